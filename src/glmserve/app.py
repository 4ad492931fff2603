"""``create_app(settings)``: wiring only; everything stateful is built by ``open_services``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from glmserve.accounting.metering import ADMITTED, Refusal
from glmserve.config.settings import Settings
from glmserve.errors import EngineError, GlmError, InvalidRequest, NotFound, Unavailable
from glmserve.frontends.messages import errors as anthropic
from glmserve.http.access_log import AccessLog
from glmserve.http.direct_routes import direct_table
from glmserve.http.front_door import FrontDoor
from glmserve.http.responses import json_response
from glmserve.http.routes import (
    admin,
    async_chat,
    batches,
    chat,
    completions,
    console,
    embeddings,
    files,
    health,
    messages,
    models,
    responses,
    tokenizer,
)
from glmserve.http.routes import metrics as metrics_route
from glmserve.metrics import Metrics
from glmserve.services import Services, open_services
from glmserve.store.db import unreachable

log = logging.getLogger("glmserve")
API_PREFIXES = ("/api/paas/v4", "/v1")
MESSAGES_PREFIXES = ("", "/api/anthropic")
PROTOCOLS = {
    "chat": "chat", "messages": "messages", "responses": "responses", "embeddings": "embeddings",
    "rerank": "rerank", "completions": "completions", "tokenizer": "tokenizer",
}  # fmt: skip


def _protocol(path: str) -> str | None:
    """The front-end a path belongs to (None: not an API route, e.g. /admin, /health)."""
    for prefix in (*API_PREFIXES, "/api/anthropic", ""):
        if path.startswith(prefix + "/"):
            rest = path[len(prefix) + 1 :]
            head = rest.split("/", 1)[0]
            if head in PROTOCOLS:
                return PROTOCOLS[head]
    return None


async def _record_refusal(request: Request, exc: GlmError) -> None:
    """A request refused after authentication but before admission still gets its usage row."""
    key_id, protocol = getattr(request.state, "key_id", None), _protocol(request.url.path)
    if key_id is None or protocol is None or ADMITTED.get():
        return
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        return
    refusal = Refusal(
        key_id, str(getattr(request.state, "model", None) or "-"), getattr(request.state, "request_id", ""),
        protocol, exc.status, exc.code,
    )  # fmt: skip
    await services.pipeline.metering.refused(refusal)


def _error_response(request: Request, exc: GlmError, status: int | None = None) -> Response:
    """The error in the envelope of the path's protocol (Anthropic's under its prefixes)."""
    request_id = getattr(request.state, "request_id", "")
    if anthropic.is_anthropic_path(request.url.path):
        return anthropic.error_response(exc, request_id, status)
    headers = exc.headers()
    headers["x-request-id"] = request_id
    return json_response(exc.body(), status or exc.status, headers)


def _routers() -> list[tuple[str, APIRouter]]:
    """Every front-end's routes under its prefixes, then the service routes and the console."""
    front_ends = (chat, models, embeddings, tokenizer, completions, responses, async_chat, files, batches)
    included = [(prefix, module.router) for prefix in API_PREFIXES for module in front_ends]
    included += [(prefix, messages.router) for prefix in MESSAGES_PREFIXES]
    included.append(("/api/anthropic/v1", models.router))  # the anthropic SDK's models.list()
    return included + [("", module.router) for module in (health, admin, metrics_route, console)]


class GlmServeApp(FastAPI):
    """FastAPI, with ``FrontDoor`` in front of its whole stack for HTTP requests."""

    front_door: FrontDoor | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front_door is None or scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self  # as Starlette sets it; the endpoints find the services through it
        await self.front_door(scope, receive, send)

    async def stack(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's own middleware, router and exception handling (past the front door)."""
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, services: Services | None = None, **inject: Any) -> GlmServeApp:
    """Wire the routes; ``services`` already open (``glmserve serve``), or opened in the lifespan.

    ``inject``: components for ``open_services`` (``router``, ``store``), for in-process tests.
    """
    metrics = services.metrics if services is not None else Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is not None:
            app.state.services = services
            yield
            return
        async with open_services(settings, metrics, **inject) as built:
            app.state.services = built
            yield

    # FastAPI's native OpenTelemetry asks the global providers on every request whether anyone
    # listens; glmserve's own metrics are Prometheus (``/metrics``) and its own access log.
    no_otel: Any = {"tracing": False, "metrics": False, "logs": False}
    app = GlmServeApp(
        title="glmserve",
        lifespan=lifespan,
        telemetry=no_otel,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    if services is not None:
        app.state.services = services
    included = _routers()
    access_log = AccessLog(metrics, enabled=settings.access_log)
    app.front_door = FrontDoor(app.stack, direct_table(included), access_log)
    for prefix, router in included:
        app.include_router(router, prefix=prefix)

    @app.exception_handler(GlmError)
    async def on_glm_error(request: Request, exc: GlmError) -> Response:
        await _record_refusal(request, exc)
        return _error_response(request, exc)

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return _error_response(request, NotFound(f"no route for {request.method} {request.url.path}"))
        return _error_response(request, InvalidRequest(str(exc.detail)), exc.status_code)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        if unreachable(exc):  # the database is down or restarting
            log.warning("database unavailable: %s", type(exc).__name__)
            return _error_response(request, Unavailable("database unavailable; retry shortly", retry_after=1))
        log.exception("unhandled error")
        return _error_response(request, EngineError("internal server error"))

    return app
