"""The direct routes: fixed-path endpoints that ``FrontDoor`` calls past FastAPI's router.

Every API call used to walk FastAPI's layers after the middleware: the exception middleware,
the exit-stack middleware, the included routers' linear match over some hundred routes, the
route's request/response wrappers and dependency solving, for endpoints that take only the
``Request`` and return a ``Response``. ``direct_table`` finds those endpoints once, in the app's
own route table (a fixed path, no parameters or dependencies besides the request), keyed by
(method, prefix + path) for the prefixes their routers are included under; ``handled`` gives
an exception the response the app's own handlers would, as the exception middleware would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi.routing import APIRoute, APIRouter
from starlette.requests import Request
from starlette.responses import Response

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


async def handled(app: Any, request: Request, exc: Exception) -> Response:
    """The response the app's handler for ``exc`` gives (the most specific class first)."""
    handlers = app.exception_handlers
    for cls in type(exc).__mro__:
        if cls in handlers:
            response: Response = await handlers[cls](request, exc)
            return response
    raise exc
