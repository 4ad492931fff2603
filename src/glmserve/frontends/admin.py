"""Wire shapes of the ``/admin`` API: key management and usage queries.

Request bodies are strict (unknown fields are a 400 naming the field): above all, ``role`` can
be given only when an admin creates a key, never in an update, so no request can raise a
key's role by slipping the field into a body.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from glmserve.store.key_records import ApiKeyRecord

DAY = r"^\d{4}-\d{2}-\d{2}$"
STATUS = r"^([1-5]\d\d|[1-5]xx|error)$"
MAX_GRACE_S = 30 * 86400
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyLimits(_Strict):
    models: list[str] | None = Field(None, max_length=256, description="None: every model")
    # The columns are 32-bit (budget_tokens 64-bit) on PostgreSQL: larger is a 400, not a 503.
    rpm: int | None = Field(None, ge=1, le=INT32_MAX)
    tpm: int | None = Field(None, ge=1, le=INT32_MAX)
    concurrency: int | None = Field(None, ge=1, le=INT32_MAX)
    budget_tokens: int | None = Field(None, ge=1, le=INT64_MAX)
    budget_period: Literal["month", "total"] | None = None
    name: str | None = Field(None, max_length=128)
    expires_at: float | None = Field(None, gt=0, description="epoch seconds")


class KeyCreate(KeyLimits):
    role: Literal["user", "admin"] = "user"
    expires_in_s: int | None = Field(None, ge=1)


class KeyUpdate(KeyLimits):
    """Fields present in the body are set (``null`` clears a limit); ``role`` is not one of them."""


class KeyRotate(_Strict):
    grace_s: int | None = Field(None, ge=0, le=MAX_GRACE_S)


class UsageParams(_Strict):
    key_id: str | None = Field(None, max_length=64)
    model: str | None = Field(None, max_length=128)
    since: str | None = Field(None, pattern=DAY)
    until: str | None = Field(None, pattern=DAY)
    request_id: str | None = Field(None, max_length=128)
    limit: int = Field(100, ge=1, le=10_000)
    status: str | None = Field(None, pattern=STATUS, description="per-request rows: 429, 4xx or error")
    offset: int = Field(0, ge=0, le=1_000_000, description="per-request rows: skip this many (paging)")

    def status_range(self) -> tuple[int, int] | None:
        """``status`` as a half-open range: ``429`` (429, 430), ``4xx`` (400, 500), ``error`` (400, 600)."""
        if self.status is None:
            return None
        if self.status == "error":
            return 400, 600
        if self.status.endswith("xx"):
            low = int(self.status[0]) * 100
            return low, low + 100
        return int(self.status), int(self.status) + 1


def key_status(record: ApiKeyRecord, now: float) -> str:
    if record.revoked_at is not None:
        return "revoked"
    return "expired" if record.expired(now) else "active"


def key_view(record: ApiKeyRecord, now: float) -> dict[str, Any]:
    """A key as the API shows it: never its secret."""
    policy = record.policy
    return {
        "id": record.id,
        "object": "api_key",
        "name": record.name,
        "role": record.role,
        "status": key_status(record, now),
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "created_by": record.created_by,
        "previous_secret_valid_until": record.prev_valid_until,
        "models": None if policy.models is None else list(policy.models),
        "rpm": policy.rpm,
        "tpm": policy.tpm,
        "concurrency": policy.concurrency,
        "budget_tokens": policy.budget_tokens,
        "budget_period": policy.budget_period,
    }
