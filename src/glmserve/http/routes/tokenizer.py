"""``POST /tokenizer`` (Zhipu), ``POST /tokenize`` and ``POST /detokenize`` (vLLM, llama.cpp).

Lookups, not generations: the key must be allowed the model; no RPM, TPM or budget is spent.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from glmserve.accounting.auth import Principal
from glmserve.errors import PermissionDenied
from glmserve.frontends import tokenizer
from glmserve.frontends.validation import parse
from glmserve.http.body import read_json
from glmserve.http.responses import json_response
from glmserve.services import authenticate, services

router = APIRouter()


def _allowed(principal: Principal, model: str | None) -> None:
    if model is not None and not principal.policy.allows(model):
        raise PermissionDenied(f"this API key may not use model '{model}'", param="model")


@router.post("/tokenizer")
async def count_tokens(request: Request) -> Response:
    svc = services(request)
    principal = await authenticate(request)
    req = parse(tokenizer.TokenizerRequest, await read_json(request, svc.settings.max_body_bytes))
    if req.request_id:
        request.state.request_id = req.request_id
    _allowed(principal, req.model)
    request_id = request.state.request_id
    tokens = await tokenizer.count(svc.router, req, request_id)
    return json_response(tokenizer.tokenizer_body(tokens, request_id))


@router.post("/tokenize")
async def tokenize(request: Request) -> Response:
    svc = services(request)
    principal = await authenticate(request)
    req = parse(tokenizer.TokenizeRequest, await read_json(request, svc.settings.max_body_bytes))
    _allowed(principal, req.model)
    return json_response(await tokenizer.tokenize(req, svc.router, request.state.request_id))


@router.post("/detokenize")
async def detokenize(request: Request) -> Response:
    svc = services(request)
    principal = await authenticate(request)
    req = parse(tokenizer.DetokenizeRequest, await read_json(request, svc.settings.max_body_bytes))
    _allowed(principal, req.model)
    return json_response(await tokenizer.detokenize(req, svc.router))
