"""Upstream embedding/rerank answers, llama.cpp's legacy completion chunks, Matryoshka shortening."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from glmserve.engines.base import CompletionText, Embedding, Event, Relevance, Usage
from glmserve.engines.llamacpp import completions
from glmserve.engines.llamacpp.embedder import shorten, to_error
from glmserve.engines.upstream import tasks
from glmserve.errors import EngineError, InvalidField, UpstreamError


def test_upstream_embeddings_come_back_in_input_order() -> None:
    payload = {"data": [{"index": 1, "embedding": [0.0, 1.0]}, {"index": 0, "embedding": [1, 0]}],
               "usage": {"prompt_tokens": 7, "total_tokens": 7}}  # fmt: skip
    assert tasks.embedding_events(payload, "d", 2) == [Embedding(0, [1.0, 0.0]), Embedding(1, [0.0, 1.0]),
                                                       Usage(7, 0)]  # fmt: skip


@pytest.mark.parametrize(
    "payload", [{}, {"data": [{"index": 0}]}, {"data": [{"index": 0, "embedding": [1]}]}]
)
def test_an_upstream_answer_without_every_vector_is_an_upstream_error(payload: object) -> None:
    with pytest.raises(UpstreamError):
        tasks.embedding_events(payload, "d", 2)


def test_upstream_rerank_scores_each_document_once() -> None:
    payload = {"results": [{"index": 1, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.1}],
               "usage": {"total_tokens": 12}}  # fmt: skip
    assert tasks.rerank_events(payload, "d", 2) == [Relevance(0, 0.1), Relevance(1, 0.9), Usage(12, 0)]
    with pytest.raises(UpstreamError):
        tasks.rerank_events({"results": [{"index": 0, "relevance_score": 1}]}, "d", 2)


def test_the_dimensions_a_request_asks_for_reach_the_upstream() -> None:
    from glmserve.engines.base import EmbeddingJob

    assert tasks.embedding_body(EmbeddingJob(["x"], 256), "m")["dimensions"] == 256
    assert "dimensions" not in tasks.embedding_body(EmbeddingJob(["x"]), "m")


def test_shorten_keeps_a_normalized_prefix() -> None:
    vector = [3.0, 4.0, 12.0]
    assert np.allclose(shorten(vector, 2), [0.6, 0.8])


def test_llamacpp_embedding_errors_name_the_limit() -> None:
    too_long = to_error({"message": "input (602 tokens) is too large to process. increase the physical batch "
                                    "size (current batch size: 512)"}, 512)  # fmt: skip
    assert (
        isinstance(too_long, InvalidField) and "602 tokens" in too_long.message and "512" in too_long.message
    )
    assert isinstance(to_error({"message": "Prompt contains invalid tokens"}, 512), InvalidField)
    assert isinstance(to_error({"message": "boom"}, 512), EngineError)


async def _events(chunks: list[dict[str, object] | None]) -> AsyncIterator[Event]:
    for chunk in chunks:
        for event in completions.to_chunks(chunk, 1):  # type: ignore[arg-type]
            yield event


def test_legacy_completion_chunks_keep_their_prompt_and_sum_usage() -> None:
    top = [{"token": " a", "logprob": -0.5}, {"token": " b", "logprob": -1.0}]
    lp = {"content": [{"token": " a", "logprob": -0.5, "top_logprobs": top}]}
    chunks = [
        {"choices": [{"index": 0, "text": " a", "logprobs": lp, "finish_reason": None}]},
        {"choices": [{"index": 0, "text": "", "finish_reason": "length"}], "usage": {"prompt_tokens": 2,
                                                                                   "completion_tokens": 1}},
        None,
        {"choices": [{"index": 1, "text": " c", "finish_reason": "stop"}], "usage": {"prompt_tokens": 3,
                                                                                   "completion_tokens": 2}},
    ]  # fmt: skip

    async def run() -> list[Event]:
        return [e async for e in completions.events(_events(chunks))]

    events = asyncio.run(run())
    first = events[0]
    assert isinstance(first, CompletionText) and first.index == 0 and first.logprobs[0].top == {" a": -0.5}
    assert events[1] == CompletionText(0, "", "length")
    assert events[2] == CompletionText(1, " c", "stop")
    assert events[-1] == Usage(5, 3)


def test_the_model_table_shows_packaged_embedding_models(tmp_path: object) -> None:
    from pathlib import Path

    from glmserve.cli.model_table import render
    from glmserve.config.settings import Settings

    root = Path(str(tmp_path))
    lines = asyncio.run(render(Settings(data_dir=root / "data", model_cache=root / "cache")))
    gemma = next(line for line in lines if line.startswith("embedding-3 "))
    assert "packaged EmbeddingGemma-300M (embedding)" in gemma and gemma.endswith("glmserve prepare-models")
    (root / "cache").mkdir()
    (root / "cache" / "all-minilm-l6-v2-f16.gguf").write_bytes(b"")
    lines = asyncio.run(render(Settings(data_dir=root / "data", model_cache=root / "cache")))
    assert next(line for line in lines if line.startswith("embedding-2 ")).endswith("ready")
