from __future__ import annotations

from fastapi import APIRouter, Request, Response

from glmserve.errors import PermissionDenied
from glmserve.services import authenticate, services

router = APIRouter()


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    svc = services(request)
    if svc.settings.metrics_require_key and not (await authenticate(request)).is_admin:
        raise PermissionDenied("metrics need an admin API key")
    body, content_type = svc.metrics.render()
    return Response(body, media_type=content_type)
