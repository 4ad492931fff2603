"""What the store knows about a key: its record, its policy (limits) and, when active, its secrets.

Only ``ActiveKey`` ever holds a secret, and its ``repr`` leaves the secrets out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import RowMapping

Role = Literal["user", "admin"]
BudgetPeriod = Literal["month", "total"]

# The policy columns of ``api_keys``; ``KeyStore.update`` may set these and nothing else.
POLICY_COLUMNS = ("models", "rpm", "tpm", "concurrency", "budget_tokens", "budget_period")
UPDATABLE_COLUMNS = ("name", "expires_at", *POLICY_COLUMNS)
RECORD_COLUMNS = (
    "id, name, created_at, revoked_at, role, expires_at, created_by, prev_valid_until, "
    + ", ".join(POLICY_COLUMNS)
)


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """Per-key limits; ``None`` means unlimited (or, for ``models``, every model)."""

    models: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    budget_tokens: int | None = None
    budget_period: BudgetPeriod = "total"

    def allows(self, model: str) -> bool:
        return self.models is None or model in self.models

    def columns(self) -> dict[str, Any]:
        """The policy as ``api_keys`` column values."""
        return {
            "models": None if self.models is None else json.dumps(list(self.models)),
            "rpm": self.rpm,
            "tpm": self.tpm,
            "concurrency": self.concurrency,
            "budget_tokens": self.budget_tokens,
            "budget_period": self.budget_period,
        }


NO_LIMITS = KeyPolicy()


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    name: str | None
    created_at: float
    revoked_at: float | None
    role: Role = "user"
    expires_at: float | None = None
    policy: KeyPolicy = NO_LIMITS
    created_by: str | None = None
    prev_valid_until: float | None = None  # a rotated-out secret still works until then

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class ActiveKey:
    """An active key with its secrets, for verifying a request; ``repr`` leaves the secrets out.

    ``previous`` is the ``(secret_hash, secret)`` of a rotated-out secret still in its grace period.
    """

    record: ApiKeyRecord
    secret_hash: str = field(repr=False)
    secret: str = field(repr=False)
    previous: tuple[str, str] | None = field(default=None, repr=False)

    def secrets(self) -> list[tuple[str, str]]:
        """``(secret_hash, secret)`` pairs that verify a request now, current first."""
        return [(self.secret_hash, self.secret), *([self.previous] if self.previous else [])]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def policy_from_row(row: RowMapping) -> KeyPolicy:
    models = row["models"]
    period = row["budget_period"]
    return KeyPolicy(
        models=None if models is None else tuple(json.loads(models)),
        rpm=_int(row["rpm"]),
        tpm=_int(row["tpm"]),
        concurrency=_int(row["concurrency"]),
        budget_tokens=_int(row["budget_tokens"]),
        budget_period="month" if period == "month" else "total",
    )


def record_from_row(row: RowMapping) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=str(row["id"]),
        name=row["name"],
        created_at=float(row["created_at"]),
        revoked_at=_float(row["revoked_at"]),
        role="admin" if row["role"] == "admin" else "user",
        expires_at=_float(row["expires_at"]),
        policy=policy_from_row(row),
        created_by=row["created_by"],
        prev_valid_until=_float(row["prev_valid_until"]),
    )
