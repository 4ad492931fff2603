"""Builds (and closes) the accounting services: limiter, budget ledger, usage writer, metering."""

from __future__ import annotations

from dataclasses import dataclass

from glmserve.accounting.budget_allowances import BudgetAllowances
from glmserve.accounting.key_admin import KeyAdmin
from glmserve.accounting.limiters.base import Limiter
from glmserve.accounting.limiters.memory import MemoryLimiter
from glmserve.accounting.limiters.redis import RedisLimiter
from glmserve.accounting.limits import Limits
from glmserve.accounting.metering import Metering
from glmserve.accounting.usage_recorder import UsageRecorder
from glmserve.config.settings import Settings
from glmserve.metrics import Metrics
from glmserve.serving.model_router import ModelRouter
from glmserve.store.budget import BudgetLedger
from glmserve.store.db import Store
from glmserve.store.keys import KeyStore
from glmserve.store.usage import UsageStore


@dataclass(slots=True)
class Accounting:
    limiter: Limiter
    allowances: BudgetAllowances
    recorder: UsageRecorder
    metering: Metering
    admin: KeyAdmin

    async def close(self) -> None:
        await self.recorder.close()
        await self.allowances.close()
        await self.limiter.close()


async def open_limiter(settings: Settings) -> Limiter:
    """Redis when ``redis_url`` is set (checked now, so a bad URL fails the start), else memory."""
    lease_s = settings.limits.lease_s
    if settings.redis_url is None:
        return MemoryLimiter(lease_s)
    fail_open = settings.limits.redis_failure == "open"
    limiter = RedisLimiter(settings.redis_url, settings.limits.redis_prefix, lease_s, fail_open=fail_open)
    try:
        await limiter.ping()
    except BaseException:
        await limiter.close()
        raise
    return limiter


async def open_accounting(
    settings: Settings, store: Store, keys: KeyStore, router: ModelRouter, metrics: Metrics
) -> Accounting:
    limiter = await open_limiter(settings)
    ledger = BudgetLedger(store, settings.limits.lease_s)
    usage = UsageStore(store)
    recorder = UsageRecorder(usage, ledger, metrics, settings.usage.retention_days)
    recorder.start()
    allowances = BudgetAllowances(ledger)
    limits = Limits(limiter, allowances, settings.limits)
    metering = Metering(
        limits,
        recorder,
        metrics,
        router,
        store_content=settings.usage.store_content,
        charge_cache_hits=settings.cache.charge_hits,
    )
    admin = KeyAdmin(keys, ledger, usage, settings.limits.rotation_grace_s)
    metrics.watch(router)
    return Accounting(limiter, allowances, recorder, metering, admin)
