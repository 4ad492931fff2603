"""``POST /embeddings`` and ``POST /rerank``: parse → ``TaskPlan`` → serve (admission, engine, meter)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from glmserve.frontends import embeddings, rerank
from glmserve.frontends.validation import parse
from glmserve.http.body import read_json
from glmserve.http.disconnect import watcher
from glmserve.services import authenticate, services

router = APIRouter()


@router.post("/embeddings")
async def create_embeddings(request: Request) -> Response:
    svc = services(request)
    principal = await authenticate(request)
    req = parse(embeddings.EmbeddingRequest, await read_json(request, svc.settings.max_body_bytes))
    if req.request_id:
        request.state.request_id = req.request_id
    plan = embeddings.build_plan(
        req, svc.router, svc.settings.embeddings.max_inputs, request.state.request_id
    )
    request.state.model = req.model
    rendering = embeddings.EmbeddingsRendering(req.model, req.encoding_format)
    return await svc.pipeline.serve(principal, plan, rendering, watcher(request.receive))


@router.post("/rerank")
async def create_rerank(request: Request) -> Response:
    svc = services(request)
    principal = await authenticate(request)
    req = parse(rerank.RerankRequest, await read_json(request, svc.settings.max_body_bytes))
    if req.request_id:
        request.state.request_id = req.request_id
    plan = rerank.build_plan(req, svc.router, request.state.request_id)
    request.state.model = req.model
    rendering = rerank.RerankRendering(req, request.state.request_id)
    return await svc.pipeline.serve(principal, plan, rendering, watcher(request.receive))
