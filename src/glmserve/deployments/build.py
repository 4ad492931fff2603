"""From the model table to engines: one embedded engine per GGUF, one upstream engine per
upstream deployment, one ``DeploymentChain`` per model that has more than one deployment or an
upstream one."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

from glmserve.config.deployments import Deployment
from glmserve.config.settings import DEFAULT_MODEL, ModelEntry, Settings
from glmserve.deployments.breaker import CircuitBreaker
from glmserve.deployments.chain import DeploymentChain
from glmserve.deployments.health import Check
from glmserve.deployments.member import Member
from glmserve.engines.base import Engine
from glmserve.engines.llamacpp.engine import LlamaCppEngine
from glmserve.engines.llamacpp.models import ensure_default_model
from glmserve.engines.thinking import EmulatedThinking
from glmserve.engines.upstream.engine import UpstreamEngine

log = logging.getLogger("glmserve.serving.model_router")


def upstream_key(entry: ModelEntry, index: int, dep: Deployment, env: Mapping[str, str]) -> str | None:
    if dep.api_key_env is None:
        return None
    key = env.get(dep.api_key_env)
    if not key:
        raise ValueError(
            f"model {entry.name!r} deployment {index}: environment variable {dep.api_key_env} is not set"
        )
    return key


class EngineFactory:
    """Builds the engines once; embedded engines are shared by every name that uses the GGUF."""

    def __init__(self, settings: Settings, env: Mapping[str, str] | None = None):
        self.settings = settings
        self.env = os.environ if env is None else env
        self.embedded: dict[tuple[Path | None, Path | None], LlamaCppEngine] = {}
        self.upstreams: list[UpstreamEngine] = []
        self.checks: list[Check] = []

    @property
    def engines(self) -> list[Engine]:
        return [*self.embedded.values(), *self.upstreams]

    async def embedded_engine(self, gguf: Path | None, mmproj: Path | None = None) -> LlamaCppEngine:
        """One engine per GGUF (and projector): a GGUF with and without one are two engines."""
        engine = self.embedded.get((gguf, mmproj))
        if engine is None:
            started = time.monotonic()
            if gguf is None:
                path = await asyncio.to_thread(ensure_default_model, self.settings.data_dir)
                label = DEFAULT_MODEL
            else:
                path, label = gguf, gguf.stem
                if not gguf.is_file():
                    raise FileNotFoundError(f"GGUF not found: {gguf}")
            if mmproj is not None and not mmproj.is_file():
                raise FileNotFoundError(f"mmproj (multimodal projector) not found: {mmproj}")
            engine = await asyncio.to_thread(LlamaCppEngine, label, path, self.settings.engine, mmproj)
            self.embedded[(gguf, mmproj)] = engine
            log.info("loaded %s in %.1fs", path, time.monotonic() - started)
        return engine

    @staticmethod
    def thinking(entry: ModelEntry, engine: Engine) -> Engine:
        """An embedded model without native reasoning thinks by think-then-answer when asked."""
        return engine if entry.reasoning_parser is not None else EmulatedThinking(engine)

    async def member(self, entry: ModelEntry, index: int, dep: Deployment) -> Member:
        policy = entry.breaker
        breaker = CircuitBreaker(
            policy.failures,
            policy.cooldown_s,
            policy.max_cooldown_s,
            failure_rate=policy.failure_rate,
            min_requests=policy.min_requests,
            window_s=policy.window_s,
            probes=policy.probes,
            probe_interval_s=policy.probe_interval_s,
        )
        label = f"{entry.name}#{index}"
        engine: Engine
        probe = None
        if dep.is_upstream:
            key = upstream_key(entry, index, dep, self.env)
            upstream = UpstreamEngine(label, dep, dep.model or entry.name, key)
            self.upstreams.append(upstream)
            engine, probe = upstream, upstream.probe
        else:
            engine = self.thinking(entry, await self.embedded_engine(dep.gguf, dep.mmproj))
        member = Member(label, dep.kind, engine, breaker, dep.weight, dep.priority, dep.max_concurrency)
        periodic = dep.health_interval_s if dep.health_path else 0.0
        if probe is not None and (periodic > 0 or (policy.probe_interval_s > 0 and breaker.enabled)):
            self.checks.append(Check(member, probe, periodic))
        return member

    async def chain(self, entry: ModelEntry) -> DeploymentChain:
        members = [await self.member(entry, i, d) for i, d in enumerate(entry.resolved_deployments())]
        panic = entry.breaker.panic_threshold
        return DeploymentChain(entry.name, members, entry.retry, panic_threshold=panic)
