from __future__ import annotations

from fastapi import APIRouter, Request, Response

from glmserve.http.responses import json_response
from glmserve.services import services

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> Response:
    table = services(request).router
    in_flight = sum(getattr(e, "in_flight", 0) for e in table.engines)
    waiting = sum(getattr(e, "waiting", 0) for e in table.engines)
    body = {"status": "ok", "models": table.names, "in_flight": in_flight, "waiting": waiting}
    body["deployments"] = table.deployment_status()
    body["cache"] = services(request).cache.health()
    return json_response(body)
