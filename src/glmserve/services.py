"""Everything a request handler needs, opened once by ``open_services`` and closed in reverse.

``open_services`` is an ``AsyncExitStack``: whatever start-up built is closed again when a later
step fails, and at shutdown (usage rows still queued are committed first). Components can be
injected — a model router over a scripted engine, a store — which is how the in-process test
tier (``tests/service``) runs the whole app without a model.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from fastapi import Request

from glmserve.accounting.auth import Authenticator, Principal
from glmserve.accounting.build import open_accounting
from glmserve.accounting.key_admin import KeyAdmin
from glmserve.accounting.key_cache import KeyCache
from glmserve.caching.cache import ResponseCache, open_cache
from glmserve.config.check import ConfigError
from glmserve.config.settings import Settings
from glmserve.errors import Unavailable
from glmserve.frontends.responses.service import ResponsesService
from glmserve.images.inputs import ImageLoader
from glmserve.jobs.service import JobsService, open_jobs
from glmserve.metrics import Metrics
from glmserve.serving.model_router import ModelRouter, build_router
from glmserve.serving.pipeline import Pipeline
from glmserve.store.db import Store, open_store
from glmserve.store.keys import KeyStore, load_or_create_master_key
from glmserve.store.responses import ResponseStore

log = logging.getLogger("glmserve")


@dataclass(slots=True)
class Services:
    settings: Settings
    auth: Authenticator
    router: ModelRouter
    images: ImageLoader
    pipeline: Pipeline
    metrics: Metrics
    admin: KeyAdmin
    cache: ResponseCache
    signing_key: bytes  # seals what glmserve hands out to be sent back (thinking signatures)
    responses: ResponsesService
    store: Store | None = None  # for /readyz
    jobs: JobsService | None = None  # async chat, files and batches

    def require_jobs(self) -> JobsService:
        if self.jobs is None:
            raise Unavailable("jobs are not available in this process")
        return self.jobs


async def _first_key(keys: KeyStore, settings: Settings) -> None:
    """A fresh install with no key at all gets one, printed once."""
    if settings.api_key is None and await keys.count() == 0:
        _, key = await keys.create("default", role="admin")
        print(f"Created the first API key (shown only once, keep it): {key}", file=sys.stderr, flush=True)


@asynccontextmanager
async def open_services(
    settings: Settings,
    metrics: Metrics,
    *,
    router: ModelRouter | None = None,
    store: Store | None = None,
) -> AsyncIterator[Services]:
    """Build every service in order; on failure or exit, close what was built, in reverse.

    A failure while building is a ``ConfigError`` (one line for the operator; the traceback is
    logged at debug level).
    """
    async with AsyncExitStack() as stack:
        try:
            built = await _build(stack, settings, metrics, router, store)
        except ConfigError:
            raise
        except Exception as exc:
            log.debug("start-up failed", exc_info=True)
            raise ConfigError(f"cannot start: {type(exc).__name__}: {exc}") from exc
        yield built


async def _build(
    stack: AsyncExitStack,
    settings: Settings,
    metrics: Metrics,
    router: ModelRouter | None,
    store: Store | None,
) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if store is None:
        store = await open_store(settings.resolved_database_url)
        stack.push_async_callback(store.close)
    master = load_or_create_master_key(settings.data_dir, settings.master_key_file)
    keys = KeyStore(store, master)
    await _first_key(keys, settings)
    if router is None:
        router = await build_router(settings)
        stack.push_async_callback(router.close)
    images = ImageLoader.from_settings(settings.images)
    stack.push_async_callback(images.close)
    cache = await open_cache(settings.cache, settings.redis_url, metrics.registry)
    stack.push_async_callback(cache.close)
    accounting = await open_accounting(settings, store, keys, router, metrics)
    stack.callback(metrics.watch, None)
    stack.push_async_callback(accounting.close)  # commits the usage rows still queued
    pipeline = Pipeline(accounting.metering, cache)
    responses = ResponsesService(
        ResponseStore(store), pipeline, router, images, settings.usage.retention_days
    )
    responses.start()
    stack.push_async_callback(responses.close)  # before accounting: cancelled jobs record their rows
    key_cache = KeyCache(keys)
    key_cache.start()
    stack.push_async_callback(key_cache.close)
    auth = Authenticator(keys, settings.api_key, cache=key_cache)
    jobs = open_jobs(settings, store, pipeline, router, images, auth)
    stack.push_async_callback(jobs.close)
    return Services(
        settings=settings,
        auth=auth,
        router=router,
        images=images,
        pipeline=pipeline,
        metrics=metrics,
        admin=accounting.admin,
        cache=cache,
        signing_key=hmac.new(master, b"glmserve signatures", hashlib.sha256).digest(),
        responses=responses,
        store=store,
        jobs=jobs,
    )


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def authenticate(request: Request, credential: str | None = None) -> Principal:
    """``credential``: what a front-end found (e.g. ``x-api-key``); default ``Authorization``."""
    sent = credential if credential is not None else request.headers.get("authorization")
    principal = await services(request).auth.authenticate(sent)
    request.state.key_id = principal.key_id  # for the access log; an id, not a secret
    return principal
