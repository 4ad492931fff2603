"""Embeddings, rerank and legacy completions take the chain's one path: fallback before the first
event, the request's own faults passed through, ``Usage`` signed with the deployment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from glmserve.config.deployments import RetryPolicy
from glmserve.deployments.breaker import CircuitBreaker
from glmserve.deployments.chain import DeploymentChain
from glmserve.deployments.member import Member
from glmserve.engines.base import (
    CompletionJob,
    CompletionText,
    Embedding,
    EmbeddingJob,
    Event,
    Relevance,
    RerankJob,
    Sampling,
    Usage,
)
from glmserve.errors import GlmError, InvalidField, UpstreamError


class Embedder:
    """Each call takes the next step: "ok" or an error to raise before any event."""

    def __init__(self, name: str, steps: list[Any]):
        self.name, self.steps, self.calls = name, steps, 0

    async def _answer(self, events: list[Event]) -> AsyncIterator[Event]:
        step = self.steps.pop(0) if self.steps else "ok"
        self.calls += 1
        if isinstance(step, GlmError):
            raise step
        for event in events:
            yield event

    def embed(self, job: EmbeddingJob) -> AsyncIterator[Event]:
        return self._answer([*(Embedding(i, [1.0, 0.0]) for i in range(len(job.inputs))), Usage(3, 0)])

    def rerank(self, job: RerankJob) -> AsyncIterator[Event]:
        return self._answer([*(Relevance(i, 0.5) for i in range(len(job.documents))), Usage(4, 0)])

    def complete(self, job: CompletionJob) -> AsyncIterator[Event]:
        return self._answer([CompletionText(0, "x", "stop"), Usage(2, 1)])

    async def close(self) -> None:
        pass


def chain(*engines: Embedder) -> DeploymentChain:
    members = [
        Member(e.name, "openai", e, CircuitBreaker(5, 10, 60), priority=i) for i, e in enumerate(engines)
    ]

    async def no_sleep(_: float) -> None:
        pass

    return DeploymentChain("m", members, RetryPolicy(retries=0), sleep=no_sleep)


async def collect(events: AsyncIterator[Event]) -> list[Event]:
    return [event async for event in events]


def test_an_embedding_falls_back_and_names_who_answered() -> None:
    broken, good = Embedder("a", [UpstreamError("down")]), Embedder("b", [])
    events = asyncio.run(collect(chain(broken, good).embed(EmbeddingJob(["x", "y"]))))
    assert events[:2] == [Embedding(0, [1.0, 0.0]), Embedding(1, [1.0, 0.0])]
    assert events[2] == Usage(3, 0, served_by="b")
    assert (broken.calls, good.calls) == (1, 1)


def test_a_request_fault_is_not_retried_elsewhere() -> None:
    first, second = Embedder("a", [InvalidField("too long", param="input")]), Embedder("b", [])
    with pytest.raises(InvalidField):
        asyncio.run(collect(chain(first, second).embed(EmbeddingJob(["x"]))))
    assert second.calls == 0


def test_rerank_and_complete_go_to_their_capability() -> None:
    served = chain(Embedder("a", []))
    ranked = asyncio.run(collect(served.rerank(RerankJob("q", ["d1", "d2"]))))
    assert [type(e) for e in ranked] == [Relevance, Relevance, Usage]
    job = CompletionJob(["p"], Sampling(temperature=1.0, top_p=1.0))
    completed = asyncio.run(collect(served.complete(job)))
    assert completed == [CompletionText(0, "x", "stop"), Usage(2, 1, served_by="a")]


def test_an_upstream_deployment_refuses_legacy_completions_as_a_400() -> None:
    from glmserve.config.deployments import Deployment
    from glmserve.engines.upstream.engine import UpstreamEngine
    from glmserve.errors import InvalidRequest

    upstream = UpstreamEngine("m#0", Deployment(kind="vllm", base_url="http://127.0.0.1:9/v1"), "m", None)
    job = CompletionJob(["p"], Sampling(temperature=1.0, top_p=1.0))
    with pytest.raises(InvalidRequest, match="not served by upstream"):
        asyncio.run(collect(chain(upstream).complete(job)))  # type: ignore[arg-type]
