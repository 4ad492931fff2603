"""The one layer every HTTP request passes first, outside FastAPI's own stack.

In one coroutine frame and one ``send`` wrapper it does what four middlewares inside FastAPI's
stack (its error, telemetry and body-limit layers) used to do, each with a frame and a wrapper:

- ``GET /livez`` is answered at once (``liveness``), ahead of everything else;
- every other request gets ``state.request_id`` (a handler may replace it with the client's),
  echoed as ``x-request-id`` on the response, and one access line and HTTP count at its end
  (``access_log``);
- a request for a direct route (``direct_routes``: a fixed path whose endpoint takes only the
  ``Request``) goes straight to its endpoint by an exact (method, path) lookup; an exception
  before its response goes to the app's own exception handlers. Anything else (a path with
  parameters, a redirect for a trailing slash, a 404 or 405) goes on to FastAPI's stack.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glmserve.http import liveness
from glmserve.http.access_log import AccessLog
from glmserve.http.direct_routes import Table, handled
from glmserve.ids import hex_id

REQUEST_ID = b"x-request-id"


class FrontDoor:
    def __init__(self, inner: ASGIApp, table: Table, access_log: AccessLog) -> None:
        self.inner = inner
        self._table = table
        self._log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        if scope["path"] == liveness.PATH and scope["method"] in ("GET", "HEAD"):
            await liveness.answer(scope, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        if "request_id" not in state:
            state["request_id"] = hex_id(16)
        started = time.monotonic()
        outcome = [500, 0]  # status, body bytes

        async def observed(message: Message) -> None:
            if message["type"] == "http.response.body":
                outcome[1] += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                outcome[0] = message["status"]
                message["headers"] = _with_request_id(message.get("headers", ()), state["request_id"])
            await send(message)

        try:
            found = self._table.get((scope["method"], scope["path"]))
            if found is None:
                await self.inner(scope, receive, observed)
                return
            route, endpoint = found
            scope["route"] = route
            scope["endpoint"] = endpoint
            request = Request(scope, receive, observed)
            try:
                response = await endpoint(request)
            except Exception as exc:
                response = await handled(scope["app"], request, exc)
            await response(scope, receive, observed)
        finally:
            self._log.record(scope, outcome[0], outcome[1], time.monotonic() - started)


def _with_request_id(headers: Any, request_id: str) -> list[tuple[bytes, bytes]]:
    """The response's headers (a new list: the response may hold the old one), with ours last."""
    kept = [pair for pair in headers if pair[0] != REQUEST_ID]
    kept.append((REQUEST_ID, request_id.encode("latin-1")))
    return kept
