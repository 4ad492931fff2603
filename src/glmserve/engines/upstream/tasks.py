"""Upstream embeddings and rerank: request bodies and answers (one JSON POST each, not streamed).

``POST {base_url}/embeddings`` is the OpenAI shape that vLLM, SGLang, llama-server, Ollama's
OpenAI API and Zhipu all serve; the vectors are asked for as floats (a base64 answer is the
front-end's business). ``POST {base_url}/rerank`` is the shape vLLM, llama-server (both Jina's
API) and Zhipu share: every document is asked for, and the front-end orders and cuts.
"""

from __future__ import annotations

from typing import Any

from glmserve.engines.base import Embedding, EmbeddingJob, Event, Relevance, RerankJob, Usage
from glmserve.errors import UpstreamError


def embedding_body(job: EmbeddingJob, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "input": job.inputs, "encoding_format": "float"}
    if job.dimensions is not None:
        body["dimensions"] = job.dimensions
    return body


def _usage(payload: dict[str, Any]) -> Usage:
    usage = payload.get("usage") or {}
    prompt = usage.get("prompt_tokens", usage.get("total_tokens", 0))
    return Usage(prompt_tokens=int(prompt or 0), completion_tokens=0)


def embedding_events(payload: Any, label: str, count: int) -> list[Event]:
    try:
        items = sorted(payload["data"], key=lambda d: int(d["index"]))
        events: list[Event] = [Embedding(int(d["index"]), [float(x) for x in d["embedding"]]) for d in items]
    except (KeyError, TypeError, ValueError):
        raise UpstreamError(f"deployment {label} answered with no embeddings") from None
    if len(events) != count:
        raise UpstreamError(f"deployment {label} answered {len(events)} embeddings for {count} inputs")
    return [*events, _usage(payload)]


def rerank_body(job: RerankJob, model: str) -> dict[str, Any]:
    return {"model": model, "query": job.query, "documents": job.documents, "top_n": len(job.documents),
            "return_documents": False}  # fmt: skip


def rerank_events(payload: Any, label: str, count: int) -> list[Event]:
    try:
        scores = {int(r["index"]): float(r["relevance_score"]) for r in payload["results"]}
    except (KeyError, TypeError, ValueError):
        raise UpstreamError(f"deployment {label} answered with no rerank results") from None
    if sorted(scores) != list(range(count)):
        raise UpstreamError(f"deployment {label} did not score each of the {count} documents once")
    return [*(Relevance(i, s) for i, s in sorted(scores.items())), _usage(payload)]
