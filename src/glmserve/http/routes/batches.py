"""``/batches``: create from an uploaded file, read, list, cancel — each key sees only its own."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from glmserve.errors import InvalidRequest
from glmserve.http.body import read_json
from glmserve.http.responses import json_response
from glmserve.services import authenticate, services

router = APIRouter()
MAX_LIST = 100


@router.post("/batches")
async def create_batch(request: Request) -> Response:
    svc = services(request)
    batches = svc.require_jobs().batches
    principal = await authenticate(request)
    body = await read_json(request, svc.settings.max_body_bytes)
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    batch = await batches.create(principal.key_id, body)
    svc.require_jobs().worker.wake.set()
    return json_response(batch)


@router.get("/batches")
async def list_batches(request: Request, limit: int = 20, after: str | None = None) -> Response:
    batches = services(request).require_jobs().batches
    principal = await authenticate(request)
    return json_response(await batches.list(principal.key_id, max(1, min(limit, MAX_LIST)), after))


@router.get("/batches/{batch_id}")
async def get_batch(request: Request, batch_id: str) -> Response:
    batches = services(request).require_jobs().batches
    principal = await authenticate(request)
    return json_response(await batches.get(batch_id, principal.key_id))


@router.post("/batches/{batch_id}/cancel")
async def cancel_batch(request: Request, batch_id: str) -> Response:
    batches = services(request).require_jobs().batches
    principal = await authenticate(request)
    return json_response(await batches.cancel(batch_id, principal.key_id))
