"""The embedded embedding engine: one xllamacpp ``Server`` in embedding mode per embedding GGUF.

llama.cpp does the work: tokenization, the encoder, the GGUF's pooling (mean for the packaged
models) and any Dense projections, and L2 normalization. ``handle_embeddings`` blocks its caller,
so each request runs on one of ``parallel`` threads of the engine's own (``call_threads``); at
most ``parallel`` requests are inside llama.cpp (which spreads a request's inputs over its slots)
and ``max_waiting`` more may queue, past that 429 ``1302``.

``dimensions`` shortens a vector the Matryoshka way (the first ``d`` components, normalized
again), which only models trained for it support; the front-end checks the size first.
Reranking is a bi-encoder: query and documents are embedded (with the model's retrieval
prompts, where it has them) and each document scores the cosine of its vector with the query's,
mapped to [0, 1] as ``(1 + cos) / 2`` (the cosine itself is the raw score).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from glmserve.engines.base import Embedding, EmbeddingJob, Event, Relevance, RerankJob, Usage
from glmserve.engines.llamacpp.call_threads import CallThreads
from glmserve.engines.llamacpp.loopback import Loopback
from glmserve.errors import EngineError, InvalidField, RateLimited

_TOO_LONG = re.compile(r"input \((\d+) tokens\) is too large")


@dataclass(frozen=True, slots=True)
class EmbedderConfig:
    parallel: int
    threads: int
    max_waiting: int
    max_input_tokens: int
    query_prefix: str = ""
    document_prefix: str = ""


def _params(path: Path, cfg: EmbedderConfig) -> Any:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.embedding = True
    params.n_parallel = cfg.parallel
    # A non-causal encoder sees a whole input in one batch: the batch is the per-input limit.
    params.n_batch = params.n_ubatch = cfg.max_input_tokens
    params.n_ctx = cfg.parallel * cfg.max_input_tokens
    params.kv_unified = True
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = cfg.threads
    params.verbosity = -1
    params.warmup = True
    return params


def shorten(vector: list[float], size: int) -> list[float]:
    """The Matryoshka prefix of ``vector``, normalized again to unit length."""
    head = np.asarray(vector[:size], dtype=np.float64)
    norm = float(np.linalg.norm(head))
    return (head / norm if norm > 0 else head).tolist()


def to_error(error: dict[str, Any], limit: int) -> Exception:
    message = str(error.get("message") or "llama.cpp error")
    if match := _TOO_LONG.search(message):
        return InvalidField(
            f"an input has {match.group(1)} tokens; this model takes at most {limit} tokens per input",
            param="input",
        )
    if "invalid token" in message.lower() or "out of range" in message.lower():
        return InvalidField(f"invalid token id in input: {message}", param="input")
    return EngineError(f"llama.cpp could not embed the input: {message}")


class LlamaCppEmbedder:
    def __init__(self, name: str, path: Path, cfg: EmbedderConfig):
        import xllamacpp

        self.name = name
        self.path = path
        self.cfg = cfg
        params = _params(path, cfg)
        self.loopback = Loopback.attach(params)
        self._server = xllamacpp.Server(params)
        self.loopback.bind(self._server)
        self._threads = CallThreads(cfg.parallel, f"embed-{name}")
        self._free = asyncio.Semaphore(cfg.parallel)
        self.waiting = 0
        self.native_dimensions = len(self._call({"input": ["x"]})["data"][0]["embedding"])

    def _call(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._server.handle_embeddings(body)
        return result

    async def _embed(self, inputs: list[str] | list[list[int]]) -> dict[str, Any]:
        if self._free.locked() and self.waiting >= self.cfg.max_waiting:
            raise RateLimited(f"embedding model is busy: {self.waiting} requests waiting; retry shortly",
                              retry_after=1)  # fmt: skip
        self.waiting += 1
        try:
            await self._free.acquire()
        finally:
            self.waiting -= 1
        try:
            result = await self._threads.call(self._call, {"input": inputs})
        finally:
            self._free.release()
        if "error" in result:
            raise to_error(result["error"], self.cfg.max_input_tokens)
        return result

    async def embed(self, job: EmbeddingJob) -> AsyncIterator[Event]:
        result = await self._embed(job.inputs)
        size = job.dimensions if job.dimensions and job.dimensions < self.native_dimensions else None
        for item in sorted(result["data"], key=lambda d: d["index"]):
            vector = item["embedding"]
            yield Embedding(item["index"], shorten(vector, size) if size else vector)
        yield Usage(prompt_tokens=int(result["usage"]["prompt_tokens"]), completion_tokens=0)

    async def rerank(self, job: RerankJob) -> AsyncIterator[Event]:
        texts = [self.cfg.query_prefix + job.query, *(self.cfg.document_prefix + d for d in job.documents)]
        result = await self._embed(texts)
        vectors = np.asarray([d["embedding"] for d in sorted(result["data"], key=lambda d: d["index"])])
        query, documents = vectors[0], vectors[1:]
        scores = documents @ query / (np.linalg.norm(documents, axis=1) * np.linalg.norm(query) + 1e-12)
        for index, cosine in enumerate(scores.tolist()):
            yield Relevance(index, min(1.0, max(0.0, (1.0 + cosine) / 2)), raw=float(cosine))
        yield Usage(prompt_tokens=int(result["usage"]["prompt_tokens"]), completion_tokens=0)

    async def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return await self.loopback.tokenize(text, add_special)

    async def detokenize(self, tokens: list[int]) -> str:
        return await self.loopback.detokenize(tokens)

    async def close(self) -> None:
        await self.loopback.close()
        await self._threads.close()
