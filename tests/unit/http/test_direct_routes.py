"""front_door.py and direct_routes.py: fixed-path endpoints called past the router, errors through
the app's handlers; every answer (but /livez) with its request id and its count."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.types import Receive, Scope, Send

from glmserve.http.access_log import AccessLog
from glmserve.http.direct_routes import direct_table
from glmserve.http.front_door import FrontDoor
from glmserve.metrics import Metrics


class Refused(Exception):
    pass


def build() -> tuple[Any, list[str], Metrics]:
    """The app, behind ``FrontDoor``; the paths that reached FastAPI's own stack; the metrics."""
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

    metrics = Metrics()
    door = FrontDoor(fastapi_stack, direct_table(included), AccessLog(metrics, enabled=False))

    async def served(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app  # as GlmServeApp sets it
        await door(scope, receive, send)

    return served, routed, metrics


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
    app, routed_paths, metrics = build()

    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return [
                await http.post("/api/paas/v4/chat/completions", json={"x": 1}),
                await http.post("/v1/chat/completions", json={"y": 2}),
                await http.post("/v1/chat/completions", json={"refuse": True}),
                await http.post("/v1/chat/completions", json={"crash": True}),
                await http.get("/v1/items/42"),
                await http.get("/v1/search?q=cats"),
                await http.post("/v1/chat/completions/extra", json={}),
                await http.get("/v1/chat/completions"),
                await http.get("/livez"),
            ]

    answers = asyncio.run(calls())
    ok, ok_v1, refused, crashed, routed, query, missing, wrong_method, live = answers
    assert (ok.status_code, ok.json()) == (200, {"echo": {"x": 1}})
    assert (ok_v1.status_code, ok_v1.json()) == (200, {"echo": {"y": 2}})
    assert (refused.status_code, refused.json()) == (429, {"error": "refused"}), "the app's own handler"
    assert (crashed.status_code, crashed.json()) == (500, {"error": "internal"})
    assert (routed.text, query.text) == ("42", "cats"), "parameterized routes still go through the router"
    assert missing.status_code == 404 and wrong_method.status_code == 405
    assert routed_paths == [
        "/v1/items/42",
        "/v1/search",
        "/v1/chat/completions/extra",
        "/v1/chat/completions",
    ], "the four POSTs to the fixed path never reached the router; the GET did (405)"
    assert live.status_code == 200 and live.json() == {"status": "alive"}, "/livez, before everything"
    ids = [r.headers.get_list("x-request-id") for r in answers[:-1]]
    assert all(len(i) == 1 and len(i[0]) == 32 for i in ids), f"one request id on every answer: {ids}"
    assert len({i[0] for i in ids}) == len(ids), "a new id per request"
    counted = metrics.http.values  # (method, route template, status) -> count
    # A route counts under its router's template (one series for both prefixes).
    assert counted[("POST", "/chat/completions", "200")] == 2, counted
    assert counted[("POST", "/chat/completions", "429")] == 1
    assert counted[("POST", "/chat/completions", "500")] == 1
    assert counted.get(("GET", "/items/{item_id}", "200")) == 1, f"routed: its template: {counted}"
    assert ("GET", "/livez", "200") not in counted
