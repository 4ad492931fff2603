"""``glmserve models``: the model table as text, with each deployment's health checked now.

Upstreams are probed once (their health path, ``models`` by default) with the configured key;
an embedded deployment is "ready" when its GGUF is on disk. Nothing is loaded.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping

from glmserve.config.deployments import Deployment
from glmserve.config.settings import ModelEntry, Settings
from glmserve.deployments.build import upstream_key
from glmserve.engines.llamacpp import packaged_embeddings
from glmserve.engines.llamacpp.models import packaged
from glmserve.engines.upstream.engine import UpstreamEngine

HEADER = f"{'MODEL':20}  {'#':>2}  {'KIND':8}  {'PRI':>3}  {'WEIGHT':>6}  {'TARGET':48}  HEALTH"


def _target(entry: ModelEntry, dep: Deployment) -> str:
    if dep.is_upstream:
        return f"{dep.base_url} ({dep.model or entry.name})"
    if dep.packaged in packaged_embeddings.CATALOG:
        return f"packaged {packaged_embeddings.packaged(dep.packaged).title} ({entry.kind})"
    return str(dep.gguf) if dep.gguf else f"packaged {packaged(dep.packaged).title}"


def _embedding_health(settings: Settings, name: str) -> str:
    if packaged_embeddings.prepared(name, settings.data_dir, settings.model_cache) is not None:
        return "ready"
    return "to convert: glmserve prepare-models"


async def _health(
    settings: Settings, entry: ModelEntry, index: int, dep: Deployment, env: Mapping[str, str]
) -> str:
    if dep.packaged in packaged_embeddings.CATALOG:
        return _embedding_health(settings, dep.packaged)
    if not dep.is_upstream:
        path = dep.gguf or packaged(dep.packaged).path(settings.data_dir)
        if dep.mmproj is not None and not dep.mmproj.is_file():
            return "missing mmproj"
        if path.is_file():
            return "ready"
        return "assembled on first serve" if dep.gguf is None else "missing GGUF"
    try:
        key = upstream_key(entry, index, dep, env)
    except ValueError:
        return f"no key: ${dep.api_key_env} is not set"
    engine = UpstreamEngine(f"{entry.name}#{index}", dep, dep.model or entry.name, key)
    started = time.perf_counter()
    try:
        ok = await engine.probe()
    finally:
        await engine.close()
    elapsed = (time.perf_counter() - started) * 1000
    return f"up ({elapsed:.0f} ms)" if ok else "DOWN"


async def render(settings: Settings, check: bool = True, env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    rows = [(e, i, d) for e in settings.models for i, d in enumerate(e.resolved_deployments())]
    if check:
        health = await asyncio.gather(*(_health(settings, e, i, d, env) for e, i, d in rows))
    else:
        health = ["-"] * len(rows)
    lines = [HEADER]
    for (entry, index, dep), state in zip(rows, health, strict=True):
        name = entry.name if index == 0 else ""
        lines.append(
            f"{name:20}  {index:>2}  {dep.kind:8}  {dep.priority:>3}  {dep.weight:>6g}  "
            f"{_target(entry, dep):48}  {state}"
        )
    names = {e.name for e in settings.models}
    aliases = {**settings.aliases, **{a: e.name for e in settings.models for a in e.aliases}}
    for alias, target in aliases.items():
        status = "" if target in names else " (not configured)"
        lines.append(f"{alias:20}  alias of {target}{status}")
    return lines
