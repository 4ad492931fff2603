"""Pure ASGI middleware: a request for a fixed path goes straight to its endpoint.

Every API call used to walk FastAPI's layers after the middleware: the exception middleware,
the exit-stack middleware, the included routers' linear match over some hundred routes, the
route's request/response wrappers and dependency solving, for endpoints that take only the
``Request`` and return a ``Response``. ``DirectRoutes`` finds those endpoints once, in the
app's own route table (a fixed path, no parameters or dependencies besides the request), and
calls them by an exact (method, path) lookup (``direct_table`` builds it from the routers and
the prefixes they are included under); an exception before the response goes to the
app's own exception handlers, as the exception middleware would send it. Anything else (a path
with parameters, a redirect for a trailing slash, a 404 or 405) still goes through the router.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi.routing import APIRoute, APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


def _direct(route: APIRoute) -> bool:
    d = route.dependant
    params = (d.path_params, d.query_params, d.header_params, d.cookie_params, d.body_params, d.dependencies)
    return "{" not in route.path and d.request_param_name is not None and not any(params)


Table = dict[tuple[str, str], tuple[APIRoute, Endpoint]]


def direct_table(included: Iterable[tuple[str, APIRouter]]) -> Table:
    """(method, prefix + path) → (route, endpoint) for each direct route of each (prefix, router)."""
    table: Table = {}
    for prefix, router in included:
        for route in router.routes:
            if isinstance(route, APIRoute) and _direct(route):
                for method in route.methods:
                    table.setdefault((method, prefix + route.path), (route, route.endpoint))
    return table


class DirectRoutes:
    def __init__(self, app: ASGIApp, table: Table) -> None:
        self.app = app
        self._table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self._table.get((scope["method"], scope["path"]))
            if found is not None:
                route, endpoint = found
                scope["route"] = route
                scope["endpoint"] = endpoint
                request = Request(scope, receive, send)
                try:
                    response = await endpoint(request)
                except Exception as exc:
                    response = await _handled(scope["app"], request, exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _handled(app: Any, request: Request, exc: Exception) -> Response:
    """The response the app's handler for ``exc`` gives (the most specific class first)."""
    handlers = app.exception_handlers
    for cls in type(exc).__mro__:
        if cls in handlers:
            response: Response = await handlers[cls](request, exc)
            return response
    raise exc
