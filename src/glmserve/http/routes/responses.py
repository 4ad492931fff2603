"""The Responses API routes: create (JSON, SSE or background), retrieve, delete, input items, cancel,
and input token counts. Parse → ``ResponsesService.prepare`` (the plan) → the one pipeline."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from glmserve.engines.base import Event, Usage
from glmserve.errors import GlmError, InvalidField, NotFound
from glmserve.frontends.responses.protocol import CreateResponse, InputTokensRequest
from glmserve.frontends.validation import parse
from glmserve.http.body import read_json
from glmserve.http.disconnect import watcher
from glmserve.http.responses import json_response
from glmserve.services import authenticate, services

router = APIRouter()
MAX_ITEMS_PAGE = 100


@router.post("/responses")
async def create_response(request: Request) -> Response:
    svc = services(request)
    principal = await authenticate(request)
    req = parse(CreateResponse, await read_json(request, svc.settings.max_body_bytes))
    prepared = await svc.responses.prepare(req, principal.key_id, request.state.request_id)
    request.state.model = req.model
    if req.background:
        return json_response(await svc.responses.start_background(principal, prepared))
    rendering = svc.responses.rendering(prepared, principal.key_id)
    gone = watcher(request.receive)
    return await svc.pipeline.serve(
        principal, prepared.plan, rendering, gone, cache_control=request.headers.get("cache-control")
    )


class _Count:
    """A rendering that answers with the input's token count (a one-token generation's prompt)."""

    media_type = "application/json"

    async def body(self, events: list[Event]) -> dict[str, Any]:
        usage = next((ev for ev in events if isinstance(ev, Usage)), None)
        return {"object": "response.input_tokens", "input_tokens": usage.prompt_tokens if usage else 0}

    async def open(self) -> list[bytes]:
        return []

    def encode(self, event: Event) -> list[bytes]:
        return []

    async def close(self) -> list[bytes]:
        return []

    def fail(self, error: GlmError) -> list[bytes]:
        return []


@router.post("/responses/input_tokens")
async def input_tokens(request: Request) -> Response:
    """Counted by the engine itself: the request runs through the pipeline for one token."""
    svc = services(request)
    principal = await authenticate(request)
    counted = parse(InputTokensRequest, await read_json(request, svc.settings.max_body_bytes))
    prepared = await svc.responses.prepare(counted.as_create(), principal.key_id, request.state.request_id)
    prepared.plan.generation.thinking = None  # the input as sent, without a think-then-answer hint
    request.state.model = counted.model
    return await svc.pipeline.serve(principal, prepared.plan, _Count(), watcher(request.receive))


async def _owned(request: Request, response_id: str) -> Any:
    svc = services(request)
    principal = await authenticate(request)
    record = await svc.responses.store.get(response_id, principal.key_id)
    if record is None:
        raise NotFound(f"response '{response_id}' not found", param="response_id")
    return record


@router.get("/responses/{response_id}")
async def retrieve_response(request: Request, response_id: str) -> Response:
    if request.query_params.get("stream") in ("true", "1"):
        raise InvalidField("streaming a stored response again is not supported", param="stream")
    record = await _owned(request, response_id)
    return json_response(record.body)


@router.delete("/responses/{response_id}")
async def delete_response(request: Request, response_id: str) -> Response:
    svc = services(request)
    principal = await authenticate(request)
    if not await svc.responses.store.delete(response_id, principal.key_id):
        raise NotFound(f"response '{response_id}' not found", param="response_id")
    return json_response({"id": response_id, "object": "response.deleted", "deleted": True})


@router.post("/responses/{response_id}/cancel")
async def cancel_response(request: Request, response_id: str) -> Response:
    svc = services(request)
    principal = await authenticate(request)
    return json_response(await svc.responses.cancel(response_id, principal.key_id))


def _page(items: list[dict[str, Any]], request: Request) -> dict[str, Any]:
    query = request.query_params
    try:
        limit = max(1, min(MAX_ITEMS_PAGE, int(query.get("limit", "20"))))
    except ValueError:
        raise InvalidField("limit must be an integer from 1 to 100", param="limit") from None
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidField("order must be 'asc' or 'desc'", param="order")
    ordered = items if order == "asc" else items[::-1]
    after = query.get("after")
    if after is not None:
        ids = [item["id"] for item in ordered]
        if after not in ids:
            raise InvalidField(f"no item '{after}' in this response's input", param="after")
        ordered = ordered[ids.index(after) + 1 :]
    page = ordered[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(ordered) > limit,
    }


@router.get("/responses/{response_id}/input_items")
async def list_input_items(request: Request, response_id: str) -> Response:
    record = await _owned(request, response_id)
    return json_response(_page(record.input_items, request))
