"""Model table: public names and aliases to the engine that serves them."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from glmserve.config.deployments import Deployment
from glmserve.config.settings import ModelEntry, Settings
from glmserve.deployments.build import EngineFactory
from glmserve.deployments.chain import DeploymentChain
from glmserve.deployments.health import HealthChecker
from glmserve.engines.base import Engine
from glmserve.engines.generation_defaults import SamplingDefaults
from glmserve.engines.llamacpp.packaged_embeddings import packaged as packaged_embedding
from glmserve.errors import ModelNotFound

log = logging.getLogger("glmserve.serving.model_router")
UPSTREAM_CONTEXT_WINDOW = 131072  # assumed for a model with upstream deployments unless configured


@dataclass(frozen=True, slots=True)
class Route:
    public_name: str
    engine: Engine
    context_window: int
    reasoning_parser: str | None = None
    tool_format: str = "qwen"
    vision: bool = False  # images reach the engine only where every deployment can see them
    defaults: SamplingDefaults | None = None  # generation defaults for what a request leaves out
    kind: str = "chat"  # chat | embedding | rerank: which endpoints may use it
    dimensions: tuple[int, ...] = ()  # embedding: the sizes a request may ask for, native first
    scoring: str | None = None  # rerank: "bi-encoder" (embedded: embedding cosine) or "upstream"


class ModelRouter:
    def __init__(
        self,
        routes: dict[str, Route],
        aliases: dict[str, str],
        created: int,
        *,
        leaves: list[Engine] | None = None,
        health: HealthChecker | None = None,
        claude_tiers: dict[str, str] | None = None,
    ):
        self._routes = routes
        self._aliases = {a: t for a, t in aliases.items() if t in routes}
        self._tiers = {word: t for word, t in (claude_tiers or {}).items() if t in routes}
        self.created = created
        self._leaves = leaves
        self._health = health

    @property
    def names(self) -> list[str]:
        return [*self._routes, *self._aliases]

    @property
    def engines(self) -> list[Engine]:
        """The engines that do the work (embedded and upstream), each once."""
        if self._leaves is not None:
            return list(self._leaves)
        unique: dict[int, Engine] = {}
        for route in self._routes.values():
            unique.setdefault(id(route.engine), route.engine)
        return list(unique.values())

    def names_of(self, kind: str) -> list[str]:
        """The public names (not aliases) of the models of one kind, in table order."""
        return [name for name, route in self._routes.items() if route.kind == kind]

    def resolve(self, name: str) -> Route:
        route = self._routes.get(self._aliases.get(name, name)) or self._by_tier(name)
        if route is None:
            raise ModelNotFound(f"model '{name}' does not exist; see GET /models", param="model")
        return route

    def _by_tier(self, name: str) -> Route | None:
        """A ``claude-*`` name no table entry or alias knows (Claude Code's own defaults, dated
        names, tiers to come) goes to the model of the first ``claude_tiers`` word it contains,
        as Zhipu's endpoint maps them to GLM models."""
        if name.startswith("claude-"):
            for word, target in self._tiers.items():
                if word in name:
                    return self._routes[target]
        return None

    def deployment_status(self) -> list[dict[str, Any]]:
        engines = (route.engine for route in self._routes.values())
        return [row for e in engines if isinstance(e, DeploymentChain) for row in e.status()]

    async def close(self) -> None:
        if self._health is not None:
            await self._health.stop()
        for engine in self.engines:
            await engine.close()


async def _embedded(factory: EngineFactory, entry: ModelEntry, dep: Deployment) -> Engine:
    if entry.kind != "chat":
        return await factory.embedder(dep)  # type: ignore[return-value]
    return factory.thinking(entry, await factory.embedded_engine(dep.gguf, dep.mmproj, dep.packaged))


def _dimensions(entry: ModelEntry, factory: EngineFactory) -> tuple[int, ...]:
    """Configured sizes, else the embedded model's: a packaged model's list, or its native size."""
    if entry.kind != "embedding":
        return ()
    if entry.dimensions:
        return tuple(entry.dimensions)
    for dep in entry.resolved_deployments():
        if dep.packaged is not None:
            return packaged_embedding(dep.packaged).dimensions
        if not dep.is_upstream:
            return (factory.embedders[str(dep.gguf)].native_dimensions,)
    return ()  # upstream only, none configured: the upstream decides


def _scoring(entry: ModelEntry) -> str | None:
    if entry.kind != "rerank":
        return None
    return "upstream" if all(d.is_upstream for d in entry.resolved_deployments()) else "bi-encoder"


async def build_router(settings: Settings) -> ModelRouter:
    """One embedded engine per distinct GGUF, one upstream engine per upstream deployment.

    A model served by the embedded engine alone is routed to it directly; any other gets a
    ``DeploymentChain`` (balancing, fallback, retries, breakers) over its deployments.
    """
    factory = EngineFactory(settings)
    routes: dict[str, Route] = {}
    try:
        for entry in settings.models:
            deployments = entry.resolved_deployments()
            default_window = settings.engine.ctx_per_slot
            if any(d.is_upstream for d in deployments):
                default_window = UPSTREAM_CONTEXT_WINDOW
            if entry.kind != "chat" and (name := deployments[0].packaged) is not None:
                default_window = packaged_embedding(name).max_input_tokens  # per input, for an embedding
            window = entry.context_window or default_window
            engine: Engine
            if len(deployments) == 1 and not deployments[0].is_upstream:
                engine = await _embedded(factory, entry, deployments[0])
            else:
                engine = await factory.chain(entry)
            routes[entry.name] = Route(
                entry.name,
                engine,
                window,
                entry.reasoning_parser,
                entry.tool_format,
                vision=entry.accepts_images,
                defaults=entry.generation_defaults(),
                kind=entry.kind,
                dimensions=_dimensions(entry, factory),
                scoring=_scoring(entry),
            )
    except BaseException:
        for built in factory.engines:
            await built.close()
        raise
    aliases = {**settings.aliases, **{a: e.name for e in settings.models for a in e.aliases}}
    health = HealthChecker(factory.checks)
    health.start()
    return ModelRouter(
        routes, aliases, int(time.time()), leaves=factory.engines, health=health,
        claude_tiers=settings.claude_tiers,
    )  # fmt: skip
