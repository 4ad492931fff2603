"""Embeddings and rerank from upstream deployments, through the deployment chain.

A second glmserve is the gateway; its upstreams are the suite's own server (real models behind a
real OpenAI / Zhipu API), and a deployment that refuses connections, tried first, so every
request falls back. The gateway loads no model of its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from .server_process import GlmServe
from .test_usage_rows import rows_for
from .upstream_gateway import UPSTREAM_KEY_ENV, start_gateway

DEAD = "http://127.0.0.1:9/v1"  # the discard port: nothing listens


@pytest.fixture(scope="module")
def gateway(server: GlmServe, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlmServe]:
    key = {"api_key_env": UPSTREAM_KEY_ENV, "health_interval_s": 0}
    table = {
        "embedding-up": {
            "kind": "embedding",
            "dimensions": [384],
            "deployments": [
                {"kind": "openai", "base_url": DEAD, "model": "embedding-2", **key},
                {
                    "kind": "openai",
                    "base_url": server.v1_url.rstrip("/"),
                    "model": "embedding-2",
                    "priority": 1,
                    **key,
                },
            ],
        },
        "rerank-up": {
            "kind": "rerank",
            "deployments": [
                {"kind": "zhipu", "base_url": server.paas_url.rstrip("/"), "model": "rerank", **key}
            ],
        },
    }
    with start_gateway(tmp_path_factory.mktemp("embed-gateway"), table, server.api_key) as started:
        yield started


@pytest.fixture(scope="module")
def via(gateway: GlmServe) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {gateway.api_key}"}
    with httpx.Client(base_url=gateway.paas_url, headers=headers, timeout=180) as client:
        yield client


def test_embeddings_fall_back_to_the_live_upstream(
    via: httpx.Client, http: httpx.Client, gateway: GlmServe
) -> None:
    texts = ["The cat sits on the mat.", "Stocks fell sharply."]
    request_id = f"up-{secrets.token_hex(6)}"
    answer = via.post("embeddings", json={"model": "embedding-up", "input": texts, "request_id": request_id})
    assert answer.status_code == 200, answer.text
    direct = http.post("embeddings", json={"model": "embedding-2", "input": texts}).json()
    got = np.asarray([d["embedding"] for d in answer.json()["data"]])
    want = np.asarray([d["embedding"] for d in direct["data"]])
    assert got.shape == (2, 384) and np.allclose(got, want, atol=1e-5)
    assert answer.json()["model"] == "embedding-up"
    assert answer.json()["usage"]["prompt_tokens"] == direct["usage"]["prompt_tokens"]
    (row,) = rows_for(gateway, request_id)
    assert (row["protocol"], row["deployment"], row["status"]) == ("embeddings", "embedding-up#1", 200)
    assert row["prompt_tokens"] == direct["usage"]["prompt_tokens"]


def test_base64_and_configured_dimensions_on_an_upstream_model(via: httpx.Client) -> None:
    b64 = via.post("embeddings", json={"model": "embedding-up", "input": "hi", "encoding_format": "base64"})
    assert b64.status_code == 200 and isinstance(b64.json()["data"][0]["embedding"], str)
    refused = via.post("embeddings", json={"model": "embedding-up", "input": "hi", "dimensions": 256})
    assert refused.status_code == 400 and "offers 384" in refused.json()["error"]["message"]


def test_upstream_errors_reach_the_client_as_they_are(via: httpx.Client) -> None:
    too_long = via.post("embeddings", json={"model": "embedding-up", "input": "word " * 600})
    assert too_long.status_code == 400, too_long.text  # the request's own fault: not retried elsewhere
    assert "tokens per input" in too_long.json()["error"]["message"]


def test_rerank_through_an_upstream_deployment(via: httpx.Client, http: httpx.Client) -> None:
    body = {
        "query": "capital of France",
        "documents": ["Bananas are yellow.", "Paris is in France."],
        "top_n": 2,
    }
    answer = via.post("rerank", json={"model": "rerank-up", **body, "return_documents": True})
    assert answer.status_code == 200, answer.text
    direct = http.post("rerank", json={"model": "rerank", **body}).json()
    assert [r["index"] for r in answer.json()["results"]] == [r["index"] for r in direct["results"]] == [1, 0]
    assert answer.json()["results"][0]["document"] == "Paris is in France."
    card = via.get("models/rerank-up").json()
    assert card["capabilities"]["rerank"] == "upstream"
