"""From the model table to engines: one embedded engine per GGUF, one upstream engine per
upstream deployment, one ``DeploymentChain`` per model that has more than one deployment or an
upstream one. Embedding and rerank models get an embedded engine in embedding mode (one per
embedding GGUF, packaged or not), shared by every name that uses it."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

from glmserve.config.deployments import Deployment
from glmserve.config.settings import ModelEntry, Settings
from glmserve.deployments.breaker import CircuitBreaker
from glmserve.deployments.chain import DeploymentChain
from glmserve.deployments.health import Check
from glmserve.deployments.member import Member
from glmserve.engines.base import Engine
from glmserve.engines.llamacpp.embedder import EmbedderConfig, LlamaCppEmbedder
from glmserve.engines.llamacpp.engine import LlamaCppEngine
from glmserve.engines.llamacpp.models import ensure_packaged, packaged
from glmserve.engines.llamacpp.packaged_embeddings import locate
from glmserve.engines.llamacpp.packaged_embeddings import packaged as packaged_embedding
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
        self.embedded: dict[tuple[Path | str, Path | None], LlamaCppEngine] = {}
        self.embedders: dict[str, LlamaCppEmbedder] = {}
        self.upstreams: list[UpstreamEngine] = []
        self.checks: list[Check] = []

    @property
    def engines(self) -> list[Engine]:
        return [*self.embedded.values(), *self.embedders.values(), *self.upstreams]  # type: ignore[list-item]

    async def embedder(self, dep: Deployment) -> LlamaCppEmbedder:
        """One embedding-mode engine per embedding GGUF (a packaged one, or ``gguf``)."""
        key = dep.packaged or str(dep.gguf)
        if key in self.embedders:
            return self.embedders[key]
        started, cfg = time.monotonic(), self.settings.embeddings
        threads = cfg.threads or self.settings.engine.threads
        if dep.packaged is not None:
            model = packaged_embedding(dep.packaged)
            path = await asyncio.to_thread(
                locate, dep.packaged, self.settings.data_dir, self.settings.model_cache
            )
            config = EmbedderConfig(cfg.parallel, threads, cfg.max_waiting, model.max_input_tokens,
                                    model.query_prefix, model.document_prefix)  # fmt: skip
            label = model.name
        else:
            assert dep.gguf is not None
            if not dep.gguf.is_file():
                raise FileNotFoundError(f"GGUF not found: {dep.gguf}")
            path, label = dep.gguf, dep.gguf.stem
            config = EmbedderConfig(cfg.parallel, threads, cfg.max_waiting, self.settings.engine.ctx_per_slot)
        engine = await asyncio.to_thread(LlamaCppEmbedder, label, path, config)
        self.embedders[key] = engine
        log.info("loaded embedding model %s in %.1fs", path, time.monotonic() - started)
        return engine

    async def embedded_engine(
        self, gguf: Path | None, mmproj: Path | None = None, package: str | None = None
    ) -> LlamaCppEngine:
        """One engine per GGUF (and projector): a GGUF with and without one are two engines.

        Without ``gguf``, the packaged model ``package`` (default: the quality default), verified.
        """
        source: Path | str = gguf if gguf is not None else packaged(package).name
        engine = self.embedded.get((source, mmproj))
        if engine is None:
            started = time.monotonic()
            if gguf is None:
                model = packaged(package)
                path = await asyncio.to_thread(ensure_packaged, model, self.settings.data_dir)
                label = model.name
            else:
                path, label = gguf, gguf.stem
                if not gguf.is_file():
                    raise FileNotFoundError(f"GGUF not found: {gguf}")
            if mmproj is not None and not mmproj.is_file():
                raise FileNotFoundError(f"mmproj (multimodal projector) not found: {mmproj}")
            engine = await asyncio.to_thread(LlamaCppEngine, label, path, self.settings.engine, mmproj)
            self.embedded[(source, mmproj)] = engine
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
        elif entry.kind != "chat":
            engine = await self.embedder(dep)  # type: ignore[assignment]
        else:
            engine = self.thinking(entry, await self.embedded_engine(dep.gguf, dep.mmproj, dep.packaged))
        member = Member(label, dep.kind, engine, breaker, dep.weight, dep.priority, dep.max_concurrency)
        periodic = dep.health_interval_s if dep.health_path else 0.0
        if probe is not None and (periodic > 0 or (policy.probe_interval_s > 0 and breaker.enabled)):
            self.checks.append(Check(member, probe, periodic))
        return member

    async def chain(self, entry: ModelEntry) -> DeploymentChain:
        members = [await self.member(entry, i, d) for i, d in enumerate(entry.resolved_deployments())]
        panic = entry.breaker.panic_threshold
        return DeploymentChain(entry.name, members, entry.retry, panic_threshold=panic)
