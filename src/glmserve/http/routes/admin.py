"""``/admin``: who am I, keys (create, list, read, update, revoke, rotate) and usage (rows, daily sums)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from glmserve.frontends.admin import KeyCreate, KeyRotate, KeyUpdate, UsageParams
from glmserve.frontends.validation import parse
from glmserve.http.body import read_json
from glmserve.http.responses import json_response
from glmserve.services import authenticate, services

router = APIRouter(prefix="/admin")


async def _body(request: Request) -> Any:
    raw = await request.body()
    return await read_json(request, services(request).settings.max_body_bytes) if raw else {}


@router.get("/me")
async def me(request: Request) -> Response:
    caller = await authenticate(request)
    return json_response(await services(request).admin.me(caller))


@router.post("/keys")
async def create_key(request: Request) -> Response:
    caller = await authenticate(request)
    body = parse(KeyCreate, await _body(request))
    return json_response(await services(request).admin.create(caller, body), 201)


@router.get("/keys")
async def list_keys(request: Request) -> Response:
    caller = await authenticate(request)
    return json_response(await services(request).admin.list(caller))


@router.get("/keys/{key_id}")
async def get_key(key_id: str, request: Request) -> Response:
    caller = await authenticate(request)
    return json_response(await services(request).admin.get(caller, key_id))


@router.patch("/keys/{key_id}")
async def update_key(key_id: str, request: Request) -> Response:
    caller = await authenticate(request)
    body = parse(KeyUpdate, await _body(request))
    return json_response(await services(request).admin.update(caller, key_id, body))


@router.post("/keys/{key_id}/revoke")
@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, request: Request) -> Response:
    caller = await authenticate(request)
    return json_response(await services(request).admin.revoke(caller, key_id))


@router.post("/keys/{key_id}/rotate")
async def rotate_key(key_id: str, request: Request) -> Response:
    caller = await authenticate(request)
    body = parse(KeyRotate, await _body(request))
    return json_response(await services(request).admin.rotate(caller, key_id, body))


@router.get("/usage")
async def usage_rows(request: Request) -> Response:
    caller = await authenticate(request)
    params = parse(UsageParams, dict(request.query_params))
    return json_response(await services(request).admin.usage(caller, params, daily=False))


@router.get("/usage/daily")
async def usage_daily(request: Request) -> Response:
    caller = await authenticate(request)
    params = parse(UsageParams, dict(request.query_params))
    return json_response(await services(request).admin.usage(caller, params, daily=True))
