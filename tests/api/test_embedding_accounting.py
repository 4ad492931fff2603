"""Embeddings, rerank and legacy completions are metered like chat: usage rows, limits, budgets.

Lookups (/tokenizer, /tokenize, /detokenize) need a key allowed the model but spend nothing.
"""

from __future__ import annotations

import secrets

import httpx

from .accounts import TIMEOUT_S, admin, create_key, error_code
from .server_process import GlmServe
from .test_usage_rows import rows_for


def post(server: GlmServe, key: str, path: str, body: dict[str, object]) -> httpx.Response:
    with httpx.Client(timeout=TIMEOUT_S) as http:
        return http.post(server.paas_url + path, json=body, headers={"Authorization": f"Bearer {key}"})


def embed(server: GlmServe, key: str, text: str = "hello world", **extra: object) -> httpx.Response:
    return post(server, key, "embeddings", {"model": "embedding-2", "input": text, **extra})


def test_each_endpoint_records_its_row_with_its_protocol(server: GlmServe) -> None:
    key, key_id = create_key(server, name="task-rows")
    calls = {
        "embeddings": ("embeddings", {"model": "embedding-2", "input": ["a", "b"]}),
        "rerank": ("rerank", {"model": "rerank", "query": "q", "documents": ["a", "b"]}),
        "completions": ("completions", {"model": "glm-4.5-flash", "prompt": "Hello", "max_tokens": 2}),
    }
    for protocol, (path, body) in calls.items():
        request_id = f"task-{secrets.token_hex(6)}"
        response = post(
            server, key, path, {**body, "request_id": request_id} if path != "completions" else body
        )
        assert response.status_code == 200, response.text
        if path == "completions":  # the legacy body has no request_id: find the row by the response's
            request_id = response.headers["x-request-id"]
        (row,) = rows_for(server, request_id, key)
        usage = response.json()["usage"]
        assert (row["key_id"], row["model"], row["status"], row["protocol"]) == (
            key_id, body["model"], 200, protocol,
        )  # fmt: skip
        assert row["prompt_tokens"] == usage["prompt_tokens"] > 0
        assert row["completion_tokens"] == usage.get("completion_tokens", 0)


def test_tpm_counts_embedding_tokens(server: GlmServe) -> None:
    key, _ = create_key(server, name="embed-tpm", tpm=40)
    text = "one two three four five six seven eight nine ten"  # 12 tokens with [CLS] and [SEP]
    # Admitted while the minute's use is under the limit: 0, 12, 24, 36 tokens; then 48 is not.
    results = [embed(server, key, text) for _ in range(5)]
    assert [r.status_code for r in results[:4]] == [200, 200, 200, 200]
    assert (results[4].status_code, error_code(results[4])) == (429, "1303")


def test_rpm_and_the_model_allow_list_apply(server: GlmServe) -> None:
    key, _ = create_key(server, name="embed-rpm", rpm=1, models=["embedding-2"])
    assert embed(server, key).status_code == 200
    second = embed(server, key)
    assert (second.status_code, error_code(second)) == (429, "1303")
    other, _ = create_key(server, name="chat-only", models=["glm-4.5-flash"])
    refused = embed(server, other)
    assert (refused.status_code, error_code(refused)) == (403, "1220")
    lookup = post(server, other, "tokenize", {"model": "embedding-2", "prompt": "hi"})
    assert (lookup.status_code, error_code(lookup)) == (403, "1220")


def test_a_budget_is_spent_by_embeddings(server: GlmServe) -> None:
    key, key_id = create_key(server, name="embed-budget", budget_tokens=5)
    assert embed(server, key).status_code == 200  # 4 tokens; admitted while budget is left
    assert embed(server, key).status_code == 200  # 1 token left: the one allowed overshoot
    refused = embed(server, key)
    assert (refused.status_code, error_code(refused)) == (429, "1113")
    with admin(server) as http:
        assert http.get(f"/admin/keys/{key_id}").json()["budget_used"] == 8


def test_lookups_spend_no_requests(server: GlmServe) -> None:
    key, _ = create_key(server, name="lookups", rpm=1)
    for _ in range(3):
        assert post(server, key, "tokenize", {"model": "glm-4.5-flash", "prompt": "hi"}).status_code == 200
        body = {"model": "glm-4.5-flash", "messages": [{"role": "user", "content": "hi"}]}
        assert post(server, key, "tokenizer", body).status_code == 200
    assert embed(server, key).status_code == 200
