"""``POST /completions`` (legacy): parse → ``TaskPlan`` → serve, streamed or not."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from glmserve.frontends import completions
from glmserve.frontends.validation import parse
from glmserve.http.body import read_json
from glmserve.http.disconnect import watcher
from glmserve.services import authenticate, services

router = APIRouter()


@router.post("/completions")
async def create_completion(request: Request) -> Response:
    svc = services(request)
    principal = await authenticate(request)
    req = parse(completions.CompletionRequest, await read_json(request, svc.settings.max_body_bytes))
    plan, echo = await completions.build_plan(req, svc.router, request.state.request_id)
    request.state.model = req.model
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    rendering = completions.CompletionsRendering(req.model, echo, req.logprobs is not None, include_usage)
    return await svc.pipeline.serve(principal, plan, rendering, watcher(request.receive))
