"""``glmserve serve``: open every service, then serve HTTP on uvicorn in the same event loop.

The services are opened *before* the server listens, so a start-up failure (a GGUF that is
missing, a model file whose hash is wrong, an unset upstream key, an unreachable database or
Redis) is one ``ConfigError`` line and exit status 2, not a traceback from inside the ASGI
lifespan. ``GET /health`` answers 200 once the server listens, i.e. once the models are loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

import uvicorn
import uvloop

from glmserve.app import create_app
from glmserve.config.settings import Settings
from glmserve.http.access_log import configure_access_log
from glmserve.http.coalesced_writes import HttpToolsCoalescing
from glmserve.http.liveness_port import LivenessPort
from glmserve.metrics import Metrics
from glmserve.services import open_services


async def _serve(settings: Settings) -> None:
    metrics = Metrics()
    async with open_services(settings, metrics) as services:
        app = create_app(settings, services=services)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            http=HttpToolsCoalescing,  # httptools, one write per loop turn (coalesced_writes)
            lifespan="off",
            timeout_graceful_shutdown=5,
            access_log=False,  # glmserve writes its own JSON access log (no raw paths, no secrets)
        )
        # What start-up built lives as long as the process: freezing it keeps the collector's
        # full passes (about 0.1 s over this heap on a slow core) out of the requests' latency.
        gc.collect()
        gc.freeze()
        async with _liveness_port(settings):
            await uvicorn.Server(config).serve()


@contextlib.asynccontextmanager
async def _liveness_port(settings: Settings) -> AsyncIterator[None]:
    if settings.liveness_port is None:
        yield
        return
    livez = LivenessPort(settings.host, settings.liveness_port)
    livez.start()
    logging.getLogger("glmserve.serve").info("liveness on http://%s:%d/livez", settings.host, livez.port)
    try:
        yield
    finally:
        await livez.close()


def run_server(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    configure_access_log()
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve(settings))
    except KeyboardInterrupt:
        pass
