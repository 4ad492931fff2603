"""``POST /chat/completions``: the Chat Completions front-end's route (parse → plan → serve)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from glmserve.frontends.chat.plan import build_plan
from glmserve.frontends.chat.protocol import ChatCompletionRequest
from glmserve.frontends.chat.render import ChatRendering, Envelope, new_completion_id
from glmserve.frontends.validation import parse
from glmserve.http.body import read_json
from glmserve.http.disconnect import watcher
from glmserve.services import authenticate, services

router = APIRouter()


@router.post("/chat/completions")
async def chat_completions(request: Request) -> Response:
    svc = services(request)
    principal = await authenticate(request)
    req = parse(ChatCompletionRequest, await read_json(request, svc.settings.max_body_bytes))
    if req.request_id:
        request.state.request_id = req.request_id
    request.state.model = req.model  # the name asked for, for a refusal's usage row too
    plan = await build_plan(req, svc.router, svc.images, request.state.request_id)
    completion_id = new_completion_id()
    envelope = Envelope(
        id=completion_id, request_id=request.state.request_id or completion_id, model=req.model
    )
    rendering = ChatRendering(envelope, req.include_usage)
    gone = watcher(request.receive)
    return await svc.pipeline.serve(
        principal, plan, rendering, gone, cache_control=request.headers.get("cache-control")
    )
