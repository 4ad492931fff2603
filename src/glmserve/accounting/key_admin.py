"""Key management and usage reading for the ``/admin`` API (and who may do what).

An admin key (the static key included) sees and manages every key. A user key sees only
itself: it may read, rotate or revoke its own key and read its own usage; any other key id is
a 404, exactly as if it did not exist, so one key cannot even learn of another.
"""

from __future__ import annotations

import json
import time
from typing import Any

from glmserve.accounting.auth import Principal
from glmserve.errors import InvalidField, NotFound, PermissionDenied
from glmserve.frontends.admin import KeyCreate, KeyLimits, KeyRotate, KeyUpdate, UsageParams, key_view
from glmserve.store.budget import BudgetLedger
from glmserve.store.key_records import KeyPolicy
from glmserve.store.keys import KeyStore
from glmserve.store.usage import UsageQuery, UsageStore


class KeyAdmin:
    def __init__(self, keys: KeyStore, ledger: BudgetLedger, usage: UsageStore, grace_s: int) -> None:
        self._keys = keys
        self._ledger = ledger
        self._usage = usage
        self._grace_s = grace_s

    async def create(self, caller: Principal, body: KeyCreate) -> dict[str, Any]:
        _require_admin(caller)
        expires_at = body.expires_at
        if body.expires_in_s is not None:
            expires_at = time.time() + body.expires_in_s
        record, key = await self._keys.create(
            body.name, policy=policy_of(body), role=body.role, expires_at=expires_at, created_by=caller.key_id
        )
        return {**key_view(record, time.time()), "key": key}

    async def list(self, caller: Principal) -> dict[str, Any]:
        records = await self._keys.list(None if caller.is_admin else caller.key_id)
        now = time.time()
        return {"object": "list", "data": [key_view(r, now) for r in records]}

    async def get(self, caller: Principal, key_id: str) -> dict[str, Any]:
        record = await self._keys.get(self._visible(caller, key_id))
        if record is None:
            raise _no_such_key(key_id)
        view = key_view(record, time.time())
        if record.policy.budget_tokens is not None:
            view["budget_used"] = await self._ledger.spent(record.id, record.policy.budget_period)
        return view

    async def update(self, caller: Principal, key_id: str, body: KeyUpdate) -> dict[str, Any]:
        _require_admin(caller)
        changes = {f: getattr(body, f) for f in body.model_fields_set}
        if "budget_period" in changes and changes["budget_period"] is None:
            raise InvalidField("budget_period must be 'month' or 'total'", param="budget_period")
        record = await self._keys.update(key_id, _columns(changes))
        if record is None:
            raise _no_such_key(key_id)
        return key_view(record, time.time())

    async def revoke(self, caller: Principal, key_id: str) -> dict[str, Any]:
        if not await self._keys.revoke(self._visible(caller, key_id)):
            raise _no_such_key(key_id)
        return await self.get(caller, key_id)

    async def rotate(self, caller: Principal, key_id: str, body: KeyRotate) -> dict[str, Any]:
        grace = self._grace_s if body.grace_s is None else body.grace_s
        rotated = await self._keys.rotate(self._visible(caller, key_id), grace)
        if rotated is None:
            raise _no_such_key(key_id)
        record, key = rotated
        return {**key_view(record, time.time()), "key": key}

    async def me(self, caller: Principal) -> dict[str, Any]:
        """Who the caller is: the console's sign-in (the static key has no record)."""
        record = await self._keys.get(caller.key_id)
        view = key_view(record, time.time()) if record is not None else {"id": caller.key_id}
        return {**view, "object": "api_key", "role": caller.role, "static": record is None}

    async def usage(self, caller: Principal, params: UsageParams, *, daily: bool) -> dict[str, Any]:
        key_id = params.key_id if caller.is_admin else self._visible(caller, params.key_id or caller.key_id)
        query = UsageQuery(
            key_id,
            params.model,
            params.since,
            params.until,
            params.request_id,
            params.limit,
            status=params.status_range(),
            offset=params.offset,
        )
        if daily:
            return {"object": "list", "data": await self._usage.daily(query)}
        rows, has_more = await self._usage.events_page(query)
        return {"object": "list", "data": rows, "offset": params.offset, "has_more": has_more}

    def _visible(self, caller: Principal, key_id: str) -> str:
        if not caller.is_admin and key_id != caller.key_id:
            raise _no_such_key(key_id)
        return key_id


def policy_of(body: KeyLimits) -> KeyPolicy:
    return KeyPolicy(
        models=None if body.models is None else tuple(body.models),
        rpm=body.rpm,
        tpm=body.tpm,
        concurrency=body.concurrency,
        budget_tokens=body.budget_tokens,
        budget_period=body.budget_period or "total",
    )


def _columns(changes: dict[str, Any]) -> dict[str, Any]:
    """Update fields to ``api_keys`` columns (``models`` is stored as JSON)."""
    if "models" not in changes:
        return changes
    models = changes["models"]
    return {**changes, "models": None if models is None else json.dumps(models)}


def _require_admin(caller: Principal) -> None:
    if not caller.is_admin:
        raise PermissionDenied("this needs an admin API key")


def _no_such_key(_key_id: str) -> NotFound:
    # The id is not echoed: a client may paste a whole key, secret included, where an id goes.
    return NotFound("no such API key", param="key_id")
