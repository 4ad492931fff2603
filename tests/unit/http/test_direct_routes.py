"""direct_routes.py: fixed-path endpoints called past the router, errors through the app's handlers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.types import Receive, Scope, Send

from glmserve.http.direct_routes import DirectRoutes, direct_table


class Refused(Exception):
    pass


def build() -> tuple[Any, list[str]]:
    """The app, behind ``DirectRoutes``; and the paths that reached FastAPI's own stack."""
    router, routed = APIRouter(), []

    @router.post("/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        if body.get("refuse"):
            raise Refused("no")
        if body.get("crash"):
            raise RuntimeError("boom")
        return JSONResponse({"echo": body})

    @router.get("/items/{item_id}")
    async def item(item_id: str, request: Request) -> Response:
        return PlainTextResponse(item_id)

    @router.get("/search")
    async def search(request: Request, q: str = "") -> Response:
        return PlainTextResponse(q)

    included = [("/v1", router), ("/api/paas/v4", router)]
    app = FastAPI()
    for prefix, r in included:
        app.include_router(r, prefix=prefix)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return JSONResponse({"error": "refused"}, status_code=429)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "internal"}, status_code=500)

    async def fastapi_stack(scope: Scope, receive: Receive, send: Send) -> None:
        routed.append(scope["path"])
        await app(scope, receive, send)

    direct = DirectRoutes(fastapi_stack, direct_table(included))

    async def served(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app  # as Starlette sets it before its middleware
        await direct(scope, receive, send)

    return served, routed


def test_only_fixed_paths_with_the_request_alone_are_direct() -> None:
    router = APIRouter()

    @router.post("/a")
    async def a(request: Request) -> Response:
        return Response()

    @router.get("/b/{x}")
    async def b(x: str, request: Request) -> Response:
        return Response()

    @router.get("/c")
    async def c(request: Request, q: str = "") -> Response:
        return Response()

    assert set(direct_table([("/v1", router), ("", router)])) == {("POST", "/v1/a"), ("POST", "/a")}


def test_direct_answers_errors_and_the_router_for_the_rest() -> None:
    app, routed_paths = build()

    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return [
                await http.post("/api/paas/v4/chat/completions", json={"x": 1}),
                await http.post("/v1/chat/completions", json={"refuse": True}),
                await http.post("/v1/chat/completions", json={"crash": True}),
                await http.get("/v1/items/42"),
                await http.get("/v1/search?q=cats"),
                await http.post("/v1/chat/completions/extra", json={}),
                await http.get("/v1/chat/completions"),
            ]

    ok, refused, crashed, routed, query, missing, wrong_method = asyncio.run(calls())
    assert (ok.status_code, ok.json()) == (200, {"echo": {"x": 1}})
    assert (refused.status_code, refused.json()) == (429, {"error": "refused"}), "the app's own handler"
    assert (crashed.status_code, crashed.json()) == (500, {"error": "internal"})
    assert (routed.text, query.text) == ("42", "cats"), "parameterized routes still go through the router"
    assert missing.status_code == 404 and wrong_method.status_code == 405
    assert routed_paths == [
        "/v1/items/42",
        "/v1/search",
        "/v1/chat/completions/extra",
        "/v1/chat/completions",
    ], "the three POSTs to the fixed path never reached the router; the GET did (405)"
