"""Model table: public names and aliases to the engine that serves them."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from glmserve.engines.base import Engine
from glmserve.engines.llamacpp.engine import LlamaCppEngine
from glmserve.engines.llamacpp.models import ensure_default_model
from glmserve.errors import ModelNotFound
from glmserve.settings import DEFAULT_MODEL, Settings

log = logging.getLogger("glmserve.routing")


@dataclass(frozen=True, slots=True)
class Route:
    public_name: str
    engine: Engine
    context_window: int
    reasoning_parser: str | None = None
    tool_format: str = "qwen"


class ModelRouter:
    def __init__(self, routes: dict[str, Route], aliases: dict[str, str], created: int):
        self._routes = routes
        self._aliases = {a: t for a, t in aliases.items() if t in routes}
        self.created = created

    @property
    def names(self) -> list[str]:
        return [*self._routes, *self._aliases]

    @property
    def engines(self) -> list[Engine]:
        unique: dict[int, Engine] = {}
        for route in self._routes.values():
            unique.setdefault(id(route.engine), route.engine)
        return list(unique.values())

    def resolve(self, name: str) -> Route:
        route = self._routes.get(self._aliases.get(name, name))
        if route is None:
            raise ModelNotFound(f"model '{name}' does not exist; see GET /models", param="model")
        return route

    def describe(self) -> list[tuple[str, str]]:
        rows = [(name, route.engine.name) for name, route in self._routes.items()]
        rows += [(alias, f"alias of {target}") for alias, target in self._aliases.items()]
        return rows

    async def close(self) -> None:
        for engine in self.engines:
            await engine.close()


async def build_router(settings: Settings) -> ModelRouter:
    """Load one embedded engine per distinct GGUF and map every configured name onto it."""
    engines: dict[Path | None, LlamaCppEngine] = {}
    routes: dict[str, Route] = {}
    for entry in settings.models:
        engine = engines.get(entry.gguf)
        if engine is None:
            started = time.monotonic()
            if entry.gguf is None:
                path = await asyncio.to_thread(ensure_default_model, settings.data_dir)
                label = DEFAULT_MODEL
            else:
                path, label = entry.gguf, entry.gguf.stem
            engine = await asyncio.to_thread(LlamaCppEngine, label, path, settings.engine)
            engines[entry.gguf] = engine
            log.info("loaded %s in %.1fs", path, time.monotonic() - started)
        window = entry.context_window or settings.engine.ctx_per_slot
        routes[entry.name] = Route(entry.name, engine, window, entry.reasoning_parser, entry.tool_format)
    return ModelRouter(routes, settings.aliases, int(time.time()))
