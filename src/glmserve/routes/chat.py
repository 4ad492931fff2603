from __future__ import annotations

from fastapi import APIRouter, Request, Response

from glmserve.disconnect import watcher
from glmserve.protocol.chat import ChatCompletionRequest
from glmserve.protocol.message_rules import check_message_sequence
from glmserve.protocol.validation import parse
from glmserve.request_body import read_json
from glmserve.services import authenticate, services

router = APIRouter()


@router.post("/chat/completions")
async def chat_completions(request: Request) -> Response:
    svc = services(request)
    principal = await authenticate(request)
    req = parse(ChatCompletionRequest, await read_json(request, svc.settings.max_body_bytes))
    check_message_sequence(req.messages)
    if req.request_id:
        request.state.request_id = req.request_id
    meter = await svc.metering.admit(principal, req, request.state.request_id)
    request.state.model = req.model  # a known name now: admission resolved it
    gone = watcher(request.receive)
    cache_control = request.headers.get("cache-control")
    work = svc.chat.create(
        req, request.state.request_id, gone, meter.watch, scope=principal.key_id, cache_control=cache_control
    )
    return await meter.respond(work)
