"""Settings of the response cache and in-flight de-duplication (see ``Settings.cache``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from glmserve.config.strict import Section


class ModelCachePolicy(Section):
    """A model's own cache policy (by public name, after alias resolution)."""

    enabled: bool = True
    ttl_s: float | None = Field(None, gt=0, description="overrides cache.ttl_s for this model")


class CacheSettings(Section):
    """Deterministic requests (greedy, or seeded) are answered from a cache of finished generations."""

    enabled: bool = Field(True, description="cache deterministic answers and de-duplicate them in flight")
    backend: Literal["memory", "redis"] = Field("memory", description="redis: replicas share the cache")
    redis_url: str | None = Field(None, description="default: the top-level redis_url")
    redis_prefix: str = Field("glmserve-cache", min_length=1, description="namespace of the Redis keys")
    ttl_s: float = Field(300.0, gt=0, description="how long an answer stays cached")
    max_entries: int = Field(1024, ge=1, description="bound of the in-memory LRU")
    scope: Literal["key", "shared"] = Field("key", description="key: each API key has its own cache")
    dedupe: bool = Field(True, description="identical requests in flight share one generation")
    charge_hits: bool = Field(False, description="count a hit's tokens against budgets and TPM")
    models: dict[str, ModelCachePolicy] = Field(default_factory=dict)

    def policy(self, model: str) -> ModelCachePolicy:
        return self.models.get(model) or ModelCachePolicy()
