"""A scripted engine and an in-process glmserve: the pipeline's own logic, no model, milliseconds.

``ScriptedEngine`` answers each generation with the next script (a list of events, or an
exception to raise at that point); ``InProcess`` runs the real app (routes, pipeline, metering,
store, limits) through ``httpx.ASGITransport`` with that engine behind every model name.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from glmserve.app import create_app
from glmserve.config.settings import Settings
from glmserve.engines.base import Event, Finish, Generation, Text, Usage
from glmserve.serving.model_router import ModelRouter, Route

Step = Event | BaseException
STATIC_KEY = "static.service-tier-key"


def answer(text: str = "hello", prompt: int = 5) -> list[Step]:
    """A complete generation: the text in two deltas, ``stop``, and exact usage."""
    half = len(text) // 2
    return [Text(text[:half]), Text(text[half:]), Finish("stop"), Usage(prompt, 2)]


class ScriptedEngine:
    name = "scripted"

    def __init__(self, default: Callable[[], list[Step]] = answer) -> None:
        self.scripts: list[list[Step]] = []
        self.default = default
        self.seen: list[Generation] = []
        self.closed_early = 0

    def stream(self, generation: Generation) -> AsyncIterator[Event]:
        self.seen.append(generation)
        script = self.scripts.pop(0) if self.scripts else self.default()
        return self._play(script)

    async def _play(self, script: list[Step]) -> AsyncIterator[Event]:
        finished = False
        try:
            for step in script:
                if isinstance(step, BaseException):
                    raise step
                await asyncio.sleep(0)
                yield step
            finished = True
        finally:
            if not finished:
                self.closed_early += 1

    async def close(self) -> None:
        pass


def scripted_router(
    engine: ScriptedEngine, names: tuple[str, ...] = ("glm-4.6", "glm-4.5-flash")
) -> ModelRouter:
    routes = {name: Route(name, engine, 4096) for name in names}
    return ModelRouter(routes, {"gpt-5": "glm-4.6"}, created=0)


@asynccontextmanager
async def in_process(tmp: Path, engine: ScriptedEngine, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The real app with ``engine`` behind every model; the client sends the static admin key."""
    config = Settings(data_dir=tmp, api_key=STATIC_KEY, access_log=False, **settings)
    app = create_app(config, router=scripted_router(engine))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        headers = {"authorization": f"Bearer {STATIC_KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://glmserve", headers=headers
        ) as client:
            yield client


async def new_key(client: httpx.AsyncClient, **limits: Any) -> str:
    response = await client.post("/admin/keys", json={"name": "t", **limits})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "glm-4.6", "messages": [{"role": "user", "content": "hi"}], **extra}


async def usage_rows(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/admin/usage", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    return list(body["data"] if isinstance(body, dict) else body)
