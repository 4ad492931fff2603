"""``/health`` (status and deployments), ``/readyz`` (readiness); ``/livez`` is ``http.liveness``.

``/readyz`` answers 200 when this replica can serve: its models are loaded (it listens only
then) and its database answers within a second; else 503 naming what failed. Each model is
listed as usable or not (not: every deployment is ejected and dead), but an unusable upstream
does not make the replica unready: every replica shares the upstreams, and a load balancer
that took them all out for it would turn a model's outage into a whole service's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import text

from glmserve.deployments.chain import DeploymentChain
from glmserve.http.responses import json_response
from glmserve.services import Services, services
from glmserve.store.db import Store

router = APIRouter()
READY_TIMEOUT_S = 1.0


@router.get("/health")
async def health(request: Request) -> Response:
    table = services(request).router
    in_flight = sum(getattr(e, "in_flight", 0) for e in table.engines)
    waiting = sum(getattr(e, "waiting", 0) for e in table.engines)
    body = {"status": "ok", "models": table.names, "in_flight": in_flight, "waiting": waiting}
    body["deployments"] = table.deployment_status()
    body["cache"] = services(request).cache.health()
    return json_response(body)


async def _database(store: Store | None) -> str | None:
    """None when the database answers ``SELECT 1`` in time; else what went wrong."""
    if store is None:
        return None
    try:
        async with asyncio.timeout(READY_TIMEOUT_S), store.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except TimeoutError:
        return f"no answer within {READY_TIMEOUT_S:g}s"
    except Exception as exc:  # any driver error: the replica cannot record usage
        return type(exc).__name__
    return None


def _models(svc: Services) -> dict[str, bool]:
    now = time.monotonic()
    usable: dict[str, bool] = {}
    for name in svc.router.names:
        engine = svc.router.resolve(name).engine
        if isinstance(engine, DeploymentChain):
            usable[name] = any(m.breaker.in_rotation(now) or not m.breaker.dead for m in engine.members)
        else:
            usable[name] = True
    return usable


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    svc = services(request)
    failed = await _database(svc.store)
    body: dict[str, Any] = {
        "status": "ready" if failed is None else "not_ready",
        "database": "ok" if failed is None else failed,
        "models": _models(svc),
    }
    return json_response(body, 200 if failed is None else 503, {"cache-control": "no-store"})
