"""``create_app(settings)``: wiring only; everything stateful is built in the lifespan."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException

from glmserve.accounting.auth import Authenticator
from glmserve.accounting.build import open_accounting
from glmserve.caching.cache import open_cache
from glmserve.config.settings import Settings
from glmserve.errors import EngineError, GlmError, InvalidRequest, NotFound
from glmserve.http.access_log import AccessLogMiddleware
from glmserve.http.request_id import RequestIdMiddleware
from glmserve.http.responses import json_response
from glmserve.http.routes import admin, chat, health, models
from glmserve.http.routes import metrics as metrics_route
from glmserve.images.inputs import ImageLoader
from glmserve.metrics import Metrics
from glmserve.services import Services
from glmserve.serving.chat_service import ChatService
from glmserve.serving.model_router import build_router
from glmserve.store.db import open_store
from glmserve.store.keys import KeyStore, load_or_create_master_key

log = logging.getLogger("glmserve")
API_PREFIXES = ("/api/paas/v4", "/v1")


async def _first_key(keys: KeyStore, settings: Settings) -> None:
    """A fresh install with no key at all gets one, printed once."""
    if settings.api_key is None and await keys.count() == 0:
        _, key = await keys.create("default", role="admin")
        print(f"Created the first API key (shown only once, keep it): {key}", file=sys.stderr, flush=True)


def _error_response(request: Request, exc: GlmError) -> Response:
    headers = exc.headers()
    headers["x-request-id"] = getattr(request.state, "request_id", "")
    return json_response(exc.body(), exc.status, headers)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = await open_store(settings.resolved_database_url)
        keys = KeyStore(store, load_or_create_master_key(settings.data_dir, settings.master_key_file))
        await _first_key(keys, settings)
        router = await build_router(settings)
        try:
            accounting = await open_accounting(settings, store, keys, router, metrics)
        except BaseException:
            await router.close()
            await store.close()
            raise
        try:
            cache = await open_cache(settings.cache, settings.redis_url, metrics.registry)
        except BaseException:
            await accounting.close()
            await router.close()
            await store.close()
            raise
        images = ImageLoader.from_settings(settings.images)
        app.state.services = Services(
            settings=settings,
            store=store,
            keys=keys,
            auth=Authenticator(keys, settings.api_key),
            router=router,
            chat=ChatService(router, cache, images),
            metrics=metrics,
            metering=accounting.metering,
            admin=accounting.admin,
            cache=cache,
        )
        # What start-up built lives as long as the process: freezing it keeps the collector's full
        # passes (about 0.1 s over this heap on a slow core) out of the requests' latency.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await accounting.close()  # commits the usage rows still queued
            metrics.watch(None)
            await cache.close()
            await images.close()
            await router.close()
            await store.close()

    metrics = Metrics()
    app = FastAPI(title="glmserve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(AccessLogMiddleware, metrics=metrics, enabled=settings.access_log)
    for prefix in API_PREFIXES:
        app.include_router(chat.router, prefix=prefix)
        app.include_router(models.router, prefix=prefix)
    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(metrics_route.router)

    @app.exception_handler(GlmError)
    async def on_glm_error(request: Request, exc: GlmError) -> Response:
        return _error_response(request, exc)

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return _error_response(request, NotFound(f"no route for {request.method} {request.url.path}"))
        err = InvalidRequest(str(exc.detail))
        return json_response(err.body(), exc.status_code, {"x-request-id": request.state.request_id})

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return _error_response(request, EngineError("internal server error"))

    return app
