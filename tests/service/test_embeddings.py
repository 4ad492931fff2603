"""Embeddings and rerank through the real app in-process, a scripted embedder behind them: the
pipeline meters them like chat (usage rows with their protocol, TPM from their real tokens) and
refuses what the route cannot do before admission."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from glmserve.app import create_app
from glmserve.config.settings import Settings
from glmserve.engines.base import Embedding, EmbeddingJob, Event, Relevance, RerankJob, Usage
from glmserve.serving.model_router import ModelRouter, Route

from .scripted import STATIC_KEY, new_key, usage_rows


class ScriptedEmbedder:
    """A 4-dimensional unit vector per input; each document's score is its position's."""

    name = "scripted-embedder"

    def __init__(self) -> None:
        self.jobs: list[EmbeddingJob | RerankJob] = []

    async def embed(self, job: EmbeddingJob) -> AsyncIterator[Event]:
        self.jobs.append(job)
        for i in range(len(job.inputs)):
            yield Embedding(i, [1.0, 0.0, 0.0, 0.0][: job.dimensions or 4])
        yield Usage(3 * len(job.inputs), 0)

    async def rerank(self, job: RerankJob) -> AsyncIterator[Event]:
        self.jobs.append(job)
        for i in range(len(job.documents)):
            yield Relevance(i, i / len(job.documents), raw=float(i))
        yield Usage(5, 0)

    async def close(self) -> None:
        pass


@asynccontextmanager
async def app_with(tmp: Path, embedder: ScriptedEmbedder) -> AsyncIterator[httpx.AsyncClient]:
    routes = {
        "vec": Route("vec", embedder, 512, kind="embedding", dimensions=(4, 2)),
        "rank": Route("rank", embedder, 512, kind="rerank", scoring="bi-encoder"),
    }
    router = ModelRouter(routes, {"vec-alias": "vec"}, created=0)
    app = create_app(Settings(data_dir=tmp, api_key=STATIC_KEY, access_log=False), router=router)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        headers = {"authorization": f"Bearer {STATIC_KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://glmserve", headers=headers
        ) as client:
            yield client


def test_embeddings_and_rerank_are_metered_with_their_protocol(tmp_path: Path) -> None:
    async def body() -> None:
        embedder = ScriptedEmbedder()
        async with app_with(tmp_path, embedder) as client:
            key = await new_key(client, tpm=10)
            auth = {"authorization": f"Bearer {key}"}
            one = await client.post(
                "/v1/embeddings",
                json={"model": "vec-alias", "input": ["a", "b"], "dimensions": 2},
                headers=auth,
            )
            assert one.status_code == 200, one.text
            assert [d["embedding"] for d in one.json()["data"]] == [[1.0, 0.0], [1.0, 0.0]]
            ranked = await client.post(
                "/v1/rerank", json={"model": "rank", "query": "q", "documents": ["x", "y"]}, headers=auth
            )
            assert [r["index"] for r in ranked.json()["results"]] == [1, 0]
            # 6 + 5 tokens used: the minute's TPM of 10 is spent, the next request waits.
            refused = await client.post("/v1/embeddings", json={"model": "vec", "input": "c"}, headers=auth)
            assert refused.status_code == 429 and refused.json()["error"]["code"] == "1303"
            rows = await usage_rows(client)
            by_protocol = {r["protocol"]: r for r in rows if r["status"] == 200}
            assert (
                by_protocol["embeddings"]["prompt_tokens"] == 6
                and by_protocol["embeddings"]["model"] == "vec-alias"
            )
            assert by_protocol["rerank"]["prompt_tokens"] == 5

    asyncio.run(body())


def test_what_a_route_cannot_do_is_refused_before_the_engine(tmp_path: Path) -> None:
    async def body() -> None:
        embedder = ScriptedEmbedder()
        async with app_with(tmp_path, embedder) as client:
            cases = [
                ("/v1/embeddings", {"model": "vec", "input": "x", "dimensions": 3}, "dimensions"),
                ("/v1/embeddings", {"model": "rank", "input": "x"}, "model"),
                ("/v1/rerank", {"model": "vec", "query": "q", "documents": ["d"]}, "model"),
                (
                    "/v1/chat/completions",
                    {"model": "vec", "messages": [{"role": "user", "content": "x"}]},
                    "model",
                ),
            ]
            for path, request, param in cases:
                response = await client.post(path, json=request)
                assert response.status_code == 400 and response.json()["error"]["param"] == param, (
                    response.text
                )
            assert embedder.jobs == []

    asyncio.run(body())
