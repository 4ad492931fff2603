"""``POST /v1/messages`` and ``/v1/messages/count_tokens``: the Anthropic Messages front-end.

Mounted at the root and under ``/api/anthropic`` (Zhipu's path: ``ANTHROPIC_BASE_URL`` is
``http://HOST:PORT/api/anthropic``); any query string (Claude Code's ``?beta=true``) is
accepted. The key comes from ``x-api-key`` or ``Authorization: Bearer`` (Claude Code sends the
first for ``ANTHROPIC_API_KEY``, the second for ``ANTHROPIC_AUTH_TOKEN``): the same keys,
JWTs and limits as the chat route. Parse → translate → ``build_plan`` → serve, like chat.

``count_tokens`` spends no rate limit and writes no usage row (it generates nothing); it is
refused for a model the key may not use, and counts what ``usage.input_tokens +
cache_read_input_tokens`` of the same request would say (see ``engines.counting``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from glmserve.engines.counting import count_prompt_tokens
from glmserve.errors import PermissionDenied
from glmserve.frontends.chat.plan import build_plan
from glmserve.frontends.messages.protocol import CountTokensRequest, MessagesRequest, parse_request
from glmserve.frontends.messages.render import MessagesRendering
from glmserve.frontends.messages.signature import ThinkingSigner
from glmserve.frontends.messages.translate import Translation, translate
from glmserve.http.body import read_json
from glmserve.http.disconnect import watcher
from glmserve.http.responses import json_response
from glmserve.services import Services, authenticate, services
from glmserve.serving.plan import Plan

router = APIRouter()
PROTOCOL = "messages"


def credential(request: Request) -> str | None:
    return request.headers.get("x-api-key") or request.headers.get("authorization")


async def _plan(request: Request, svc: Services, model: type[CountTokensRequest]) -> tuple[Plan, Translation]:
    signer = ThinkingSigner(svc.signing_key)
    req = parse_request(model, await read_json(request, svc.settings.max_body_bytes))
    translation = translate(req, dict(request.headers), signer)
    plan = await build_plan(
        translation.chat, svc.router, svc.images, request.state.request_id, protocol=PROTOCOL
    )
    translation.apply(plan.generation)
    request.state.model = req.model  # a known name now: the plan resolved it
    return plan, translation


@router.post("/v1/messages")
async def create_message(request: Request) -> Response:
    svc = services(request)
    principal = await authenticate(request, credential(request))
    plan, _ = await _plan(request, svc, MessagesRequest)
    request_id = request.state.request_id
    rendering = MessagesRendering(ThinkingSigner(svc.signing_key), plan.model, request_id)
    response = await svc.pipeline.serve(
        principal,
        plan,
        rendering,
        watcher(request.receive),
        cache_control=request.headers.get("cache-control"),
    )
    response.headers["request-id"] = request_id
    return response


@router.post("/v1/messages/count_tokens")
async def count_tokens(request: Request) -> Response:
    svc = services(request)
    principal = await authenticate(request, credential(request))
    plan, _ = await _plan(request, svc, CountTokensRequest)
    if not principal.policy.allows(plan.model):
        raise PermissionDenied(f"this API key may not use model '{plan.model}'", param="model")
    tokens = await count_prompt_tokens(plan.route.engine, plan.generation)
    return json_response({"input_tokens": tokens}, headers={"request-id": request.state.request_id})
