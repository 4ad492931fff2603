"""Settings for keys' limits, usage records and observability (see ``Settings``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from glmserve.config.strict import Section


class LimitSettings(Section):
    """Defaults for stored keys that have no limit of their own; the static key has none."""

    rpm: int | None = Field(None, ge=1, description="requests per minute per key")
    tpm: int | None = Field(None, ge=1, description="tokens per minute per key")
    concurrency: int | None = Field(None, ge=1, description="requests in flight per key")
    lease_s: int = Field(
        900, ge=10, description="a concurrency slot or budget hold a crashed replica left expires after this"
    )
    rotation_grace_s: int = Field(
        3600, ge=0, le=30 * 86400, description="how long a rotated-out secret keeps working"
    )
    redis_prefix: str = Field("glmserve", min_length=1, description="namespace of the Redis keys")
    redis_failure: Literal["open", "closed"] = Field(
        "open", description="Redis unreachable: admit uncounted (open) or refuse with 503 (closed)"
    )


class UsageSettings(Section):
    retention_days: int = Field(90, ge=0, description="per-request rows are kept this long; 0: forever")
    store_content: bool = Field(False, description="also keep each request's messages and the answer text")
