"""Cut streams are charged what was produced: the embedded model's own count, an upstream's streamed text.

The embedded engine (the real 0.5B) counts its tokens as it streams, so a stream its client leaves
after six content chunks, or a JSON request whose client gave up, is charged exactly what it
generated, prompt included, and not marked as an estimate. An upstream without a count (the fake
upstream sends usage only at the end) is charged its prompt and the text it streamed, counted as
``/tokenizer`` counts for that model (a quarter of the UTF-8 bytes, README), whether the upstream
broke off or the client left; those rows say ``usage_estimated``. Each key's budget is charged
the row's figure.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .accounts import TIMEOUT_S, admin, chat_body, create_key
from .fake_upstream import FakeUpstream
from .server_process import GlmServe
from .upstream_gateway import UPSTREAM_KEY_ENV, ask, start_gateway

STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]
MAX_TOKENS = 300
# The engine stops at the next token once the client has gone; a few more may have been read by
# the server before it noticed (it writes into the socket until the connection is seen closed).
SLACK_TOKENS = 24
LEAVE_AFTER_S = 2.0  # a JSON request's client gives up after this long (the 0.5B writes ~30 tokens/s)


def row_of(server: GlmServe, request_id: str) -> dict[str, Any]:
    """The request's usage row (a 499 row is written in the background, just after the cut)."""
    deadline = time.monotonic() + 10
    with admin(server) as http:
        while True:
            rows = http.get("/admin/usage", params={"request_id": request_id}).json()["data"]
            if rows or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert len(rows) == 1, rows
    row: dict[str, Any] = rows[0]
    return row


def budget_used(server: GlmServe, key_id: str) -> int:
    with admin(server) as http:
        return int(http.get(f"/admin/keys/{key_id}").json()["budget_used"])


def prompt_count(server: GlmServe, model: str, messages: list[dict[str, str]]) -> int:
    """What Zhipu's ``/tokenizer`` says the prompt costs on ``server``."""
    with admin(server) as http:
        counted = http.post("/api/paas/v4/tokenizer", json={"model": model, "messages": messages})
    assert counted.status_code == 200, counted.text
    return int(counted.json()["usage"]["prompt_tokens"])


def stream_and_leave(server: GlmServe, key: str, body: dict[str, Any], chunks: int) -> str:
    """Stream ``body``, read ``chunks`` content chunks, close the connection; the content read."""
    read: list[str] = []
    headers = {"Authorization": f"Bearer {key}"}
    http = httpx.Client(base_url=server.paas_url, headers=headers, timeout=TIMEOUT_S)
    with http, http.stream("POST", "chat/completions", json={**body, "stream": True}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: {"):
                choices = json.loads(line[6:])["choices"]
                if choices and (content := choices[0]["delta"].get("content")):
                    read.append(content)
            if len(read) == chunks:
                break
    return "".join(read)


def test_an_embedded_stream_left_after_six_chunks_is_charged_what_the_engine_produced(
    server: GlmServe,
) -> None:
    key, key_id = create_key(server, name="cut-embedded", budget_tokens=100_000, budget_period="total")
    with admin(server) as http:  # a cached prompt, as the replay below will have (see test_upstream_gateway)
        assert http.post("/api/paas/v4/chat/completions", json=chat_body(messages=STORY)).status_code == 200
    request_id = f"cut-{secrets.token_hex(6)}"
    body = chat_body(max_tokens=MAX_TOKENS, request_id=request_id, messages=STORY)
    read = stream_and_leave(server, key, body, 6)

    row = row_of(server, request_id)
    assert (row["status"], row["stream"], row["usage_estimated"]) == (499, True, False)
    produced = row["completion_tokens"]
    assert 6 <= produced <= 6 + SLACK_TOKENS, "charged what was generated until the cut, not 0"
    assert row["prompt_tokens"] == prompt_count(server, "glm-4.5-flash", STORY)
    assert budget_used(server, key_id) == row["prompt_tokens"] + produced

    # Greedy decoding: the engine's first `produced` tokens, asked for again, begin with what the
    # client read (fewer would have cut it short) and are exactly `produced` tokens long.
    replay = chat_body(max_tokens=produced, messages=STORY)
    with admin(server) as http:
        again = http.post("/api/paas/v4/chat/completions", json=replay).json()
    assert again["usage"]["completion_tokens"] == produced
    assert again["choices"][0]["message"]["content"].startswith(read)


def test_an_embedded_json_request_whose_client_left_is_charged_what_was_generated(server: GlmServe) -> None:
    key, key_id = create_key(server, name="cut-json", budget_tokens=100_000, budget_period="total")
    request_id = f"cut-json-{secrets.token_hex(6)}"
    body = chat_body(max_tokens=MAX_TOKENS, request_id=request_id, messages=STORY)
    headers = {"Authorization": f"Bearer {key}"}
    http = httpx.Client(base_url=server.paas_url, headers=headers, timeout=LEAVE_AFTER_S)
    with http, pytest.raises(httpx.ReadTimeout):  # the client gives up and closes the connection
        http.post("chat/completions", json=body)

    row = row_of(server, request_id)
    assert (row["status"], row["stream"], row["usage_estimated"]) == (499, False, False)
    assert 0 < row["completion_tokens"] < MAX_TOKENS, "charged what was generated before it left"
    assert row["prompt_tokens"] == prompt_count(server, "glm-4.5-flash", STORY)
    assert budget_used(server, key_id) == row["prompt_tokens"] + row["completion_tokens"]


# -- upstream: the fake sends usage only after its last chunk -----------------------------------
@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(chunks=10) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlmServe]:
    def solo(scenario: str) -> dict[str, Any]:
        deployment = {"kind": "openai", "base_url": fake.base_url, "model": scenario}
        return {"deployments": [deployment | {"api_key_env": UPSTREAM_KEY_ENV, "health_interval_s": 0}]}

    table = {"cut": solo("cut"), "reset_mid": solo("reset_mid"), "drip": solo("drip:0.5")}
    with start_gateway(tmp_path_factory.mktemp("cut-metering"), table, "upstream-secret") as started:
        yield started


def estimated(text: str) -> int:
    return math.ceil(len(text.encode()) / 4)


@pytest.mark.parametrize("model", ["cut", "reset_mid"])
def test_an_upstream_stream_cut_mid_way_is_charged_its_streamed_text(
    gateway: GlmServe, fake: FakeUpstream, model: str
) -> None:
    key, key_id = create_key(gateway, name=f"cut-{model}", budget_tokens=100_000, budget_period="total")
    request_id = f"{model}-{secrets.token_hex(6)}"
    body = ask(model, request_id=request_id)
    headers = {"Authorization": f"Bearer {key}"}
    http = httpx.Client(base_url=gateway.paas_url, headers=headers, timeout=30)
    with http, http.stream("POST", "chat/completions", json={**body, "stream": True}) as response:
        text = "".join(response.iter_text())
    assert '"finish_reason":"network_error"' in text
    streamed = "".join(
        c["choices"][0]["delta"].get("content") or ""
        for line in text.split("\n")
        if line.startswith("data: {") and (c := json.loads(line[6:])).get("choices")
    )
    assert streamed == "Hello "

    row = row_of(gateway, request_id)
    assert (row["status"], row["usage_estimated"]) == (502, True)
    assert row["completion_tokens"] == estimated(streamed)
    assert row["prompt_tokens"] == prompt_count(gateway, model, body["messages"]) > 0
    assert budget_used(gateway, key_id) == row["prompt_tokens"] + row["completion_tokens"]
    assert fake.wait_idle(5)


def test_an_upstream_stream_its_client_left_is_charged_its_streamed_text(
    gateway: GlmServe, fake: FakeUpstream
) -> None:
    key, key_id = create_key(gateway, name="cut-left", budget_tokens=100_000, budget_period="total")
    request_id = f"left-{secrets.token_hex(6)}"
    body = ask("drip", request_id=request_id)
    read = stream_and_leave(gateway, key, body, 3)
    assert read == "Hello from the "

    row = row_of(gateway, request_id)
    assert (row["status"], row["usage_estimated"]) == (499, True)
    # The upstream drips a chunk every 0.5 s: the gateway saw the client leave before the next one.
    assert row["completion_tokens"] == estimated(read)
    assert row["prompt_tokens"] == prompt_count(gateway, "drip", body["messages"]) > 0
    assert budget_used(gateway, key_id) == row["prompt_tokens"] + row["completion_tokens"]
    assert fake.wait_idle(5), "the upstream request was closed"
