"""The Rerank front-end (``POST /rerank``, Zhipu's shape, which vLLM and llama.cpp's Jina-style
``/rerank`` share): parse → ``TaskPlan`` → JSON.

``results`` are ordered by ``relevance_score``, best first, cut to ``top_n`` (0 or absent: all),
each with the document's ``index`` in the request and, with ``return_documents``, its text.
A model of kind ``rerank`` served by the embedded engine is a bi-encoder (no reranker weights
ship anywhere reachable): the score is ``(1 + cos) / 2`` of the query's and the document's
embeddings, and ``return_raw_scores`` gives the cosine itself. Upstream rerank deployments
(vLLM, llama-server, Zhipu) answer with their own scores through the deployment chain.
Limits (Zhipu's): the query and each document at most 4,096 characters, at most 128 documents.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

from glmserve.engines.base import Event, Relevance, RerankJob, Usage
from glmserve.errors import InvalidField
from glmserve.frontends.embeddings import SPECIAL_TOKENS_PER_INPUT, route_of
from glmserve.frontends.json_rendering import JsonRendering
from glmserve.ids import hex_id
from glmserve.serving.model_router import ModelRouter
from glmserve.serving.plan import TaskPlan

MAX_CHARS = 4096
MAX_DOCUMENTS = 128


class RerankRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = "rerank"
    query: str
    documents: list[str]
    top_n: int | None = None
    return_documents: bool | None = None
    return_raw_scores: bool | None = None
    request_id: str | None = None
    user_id: str | None = None


def check(req: RerankRequest) -> None:
    if not req.query:
        raise InvalidField("'query' must not be empty", param="query")
    if len(req.query) > MAX_CHARS:
        raise InvalidField(f"'query' has {len(req.query)} characters; at most {MAX_CHARS}", param="query")
    if not req.documents:
        raise InvalidField("'documents' must not be empty", param="documents")
    if len(req.documents) > MAX_DOCUMENTS:
        raise InvalidField(f"'documents' has {len(req.documents)} items; at most {MAX_DOCUMENTS}",
                           param="documents")  # fmt: skip
    for i, doc in enumerate(req.documents):
        if len(doc) > MAX_CHARS:
            raise InvalidField(f"'documents[{i}]' has {len(doc)} characters; at most {MAX_CHARS}",
                               param=f"documents[{i}]")  # fmt: skip
    if req.top_n is not None and req.top_n < 0:
        raise InvalidField("'top_n' must be 0 (all) or more", param="top_n")


def build_plan(req: RerankRequest, router: ModelRouter, request_id: str) -> TaskPlan:
    route = route_of(router, req.model, "rerank", "/rerank")
    check(req)
    texts = [req.query, *req.documents]
    tokens = sum(min(route.context_window, len(t.encode()) + SPECIAL_TOKENS_PER_INPUT) + 16 for t in texts)
    return TaskPlan(
        route=route,
        model=req.model,
        task=RerankJob(req.query, list(req.documents)),
        tokens=tokens,
        protocol="rerank",
        request_id=request_id,
        content=lambda: orjson.dumps({"query": req.query, "documents": req.documents}).decode(),
    )


class RerankRendering(JsonRendering):
    def __init__(self, req: RerankRequest, request_id: str) -> None:
        self.req = req
        self.request_id = request_id

    def _result(self, ev: Relevance) -> dict[str, Any]:
        raw = self.req.return_raw_scores and ev.raw is not None
        result: dict[str, Any] = {"index": ev.index, "relevance_score": ev.raw if raw else ev.score}
        if self.req.return_documents:
            result["document"] = self.req.documents[ev.index]
        return result

    async def body(self, events: list[Event]) -> Any:
        scored = sorted((ev for ev in events if isinstance(ev, Relevance)), key=lambda ev: -ev.score)
        if self.req.top_n:
            scored = scored[: self.req.top_n]
        tokens = next((ev.prompt_tokens for ev in events if isinstance(ev, Usage)), 0)
        return {
            "id": f"rerank-{hex_id(12)}",
            "created": int(time.time()),
            "request_id": self.request_id,
            "model": self.req.model,
            "results": [self._result(ev) for ev in scored],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
