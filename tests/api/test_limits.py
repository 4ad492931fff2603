"""Per-key limits on a real server: RPM, TPM, concurrency, budgets, with Zhipu codes and headers."""

from __future__ import annotations

import concurrent.futures
import json
import time
from typing import Any

import httpx
import openai
import pytest

from .accounts import TIMEOUT_S, admin, chat, chat_body, create_key, error_code
from .server_process import GlmServe

RACERS = 20


def sdk(server: GlmServe, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=server.paas_url, max_retries=0, timeout=TIMEOUT_S)


def test_rpm_gives_1303_with_retry_after_and_ratelimit_headers(server: GlmServe) -> None:
    key, _ = create_key(server, name="rpm", rpm=3)
    client = sdk(server, key)
    ok = [client.chat.completions.with_raw_response.create(**chat_body()) for _ in range(3)]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in ok] == ["2", "1", "0"]
    assert all(r.headers["x-ratelimit-limit-requests"] == "3" for r in ok)
    assert ok[0].headers["x-ratelimit-reset-requests"].endswith("s")
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(**chat_body())
    response = caught.value.response
    assert caught.value.code == "1303"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["x-should-retry"] == "true"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"


def test_retry_after_of_1303_is_right(server: GlmServe) -> None:
    """Waiting the advertised Retry-After gets the next request in; 3 s less does not.

    The window is 60 s and counted per second, so this takes a minute: the first requests come
    at least 20 s before the refusals, which must therefore advertise at most 40 s, not 60.
    """
    keys = [create_key(server, name=f"retry-{kind}", **{kind: 1})[0] for kind in ("rpm", "tpm")]
    assert [chat(server, key).status_code for key in keys] == [200, 200]
    time.sleep(20)
    waits = []  # (the refusal was sent, it was answered, Retry-After, key)
    for key in keys:
        sent = time.monotonic()
        refused = chat(server, key)
        assert (refused.status_code, error_code(refused)) == (429, "1303"), refused.text
        waits.append((sent, time.monotonic(), int(refused.headers["retry-after"]), key))
    assert all(1 <= retry_after <= 40 for _, _, retry_after, _ in waits), waits
    # The window frees after more than Retry-After - 1 s (whole seconds); checked 3 s before, so
    # that a loaded machine's slow answer still reaches the limiter inside the window.
    for sent, _, retry_after, key in waits:
        time.sleep(max(0.0, sent + retry_after - 3 - time.monotonic()))
        early = chat(server, key).status_code
        assert early == 429, f"admitted 3 s before its Retry-After ran out: {waits}, now {time.monotonic()}"
    for _, answered, retry_after, key in waits:  # and at most Retry-After after the answer
        time.sleep(max(0.0, answered + retry_after - time.monotonic()))
        assert chat(server, key).status_code == 200, f"still refused once its Retry-After passed: {waits}"


def test_tpm_counts_tokens_and_refuses_past_the_limit(server: GlmServe) -> None:
    key, _ = create_key(server, name="tpm", tpm=50)
    first, second, third = (chat(server, key) for _ in range(3))  # ~31 tokens each
    assert first.status_code == 200 and second.status_code == 200, second.text
    assert (third.status_code, error_code(third)) == (429, "1303")
    assert "tokens per minute" in third.json()["error"]["message"]
    assert int(third.headers["x-ratelimit-remaining-tokens"]) == 0
    assert 1 <= int(third.headers["retry-after"]) <= 60


def test_concurrency_slot_is_held_until_the_stream_ends(server: GlmServe) -> None:
    key, _ = create_key(server, name="one-at-a-time", concurrency=1)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.paas_url, headers=headers, timeout=TIMEOUT_S) as http:
        with http.stream("POST", "chat/completions", json=chat_body(max_tokens=24, stream=True)) as stream:
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("data:"))
            busy = http.post("chat/completions", json=chat_body())
            assert (busy.status_code, error_code(busy)) == (429, "1302")
            assert busy.headers["retry-after"] == "1" and busy.headers["x-should-retry"] == "true"
            assert [line for line in lines if line.startswith("data:")][-1] == "data: [DONE]"
        # The slot is given back before [DONE] is sent: a client that goes on at once gets in.
        for _ in range(3):
            assert http.post("chat/completions", json=chat_body()).status_code == 200


def test_model_allow_list_is_a_403(server: GlmServe) -> None:
    key, _ = create_key(server, name="only-glm-4.5", models=["glm-4.5"])
    assert chat(server, key, model="glm-4.5").status_code == 200
    refused = chat(server, key, model="glm-4.6")
    assert (refused.status_code, error_code(refused)) == (403, "1220")


def test_monthly_budget_gives_1308_and_no_retry(server: GlmServe) -> None:
    key, _ = create_key(server, name="monthly", budget_tokens=1, budget_period="month")
    assert chat(server, key).status_code == 200  # admitted with 1 token left: the one allowed overshoot
    refused = chat(server, key)
    assert (refused.status_code, error_code(refused)) == (429, "1308")
    assert refused.headers["x-should-retry"] == "false"
    assert "retry-after" not in refused.headers


def _race(server: GlmServe, key: str) -> list[httpx.Response]:
    with concurrent.futures.ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(lambda _: chat(server, key, max_tokens=4), range(RACERS)))


def _budget(server: GlmServe, key_id: str) -> dict[str, Any]:
    with admin(server) as http:
        body: dict[str, Any] = http.get(f"/admin/keys/{key_id}").json()
        return body


@pytest.mark.parametrize("headroom", [1, 1200], ids=["last-token", "a-few-requests"])
def test_parallel_budget_race_overshoots_by_at_most_one_request(server: GlmServe, headroom: int) -> None:
    """20 requests at once against a budget with ``headroom`` tokens left."""
    key, key_id = create_key(server, name=f"race-{headroom}", budget_tokens=10_000_000)
    for _ in range(2):
        assert chat(server, key, max_tokens=4).status_code == 200
    spent_before = _budget(server, key_id)["budget_used"]
    budget = spent_before + headroom
    with admin(server) as http:
        assert http.patch(f"/admin/keys/{key_id}", json={"budget_tokens": budget}).status_code == 200

    responses = _race(server, key)
    ok = [r.json()["usage"]["total_tokens"] for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    spent = _budget(server, key_id)["budget_used"]
    figures = {
        "budget": budget, "spent": spent, "admitted": len(ok), "refused": len(refused),
        "overshoot": spent - budget, "largest_request": max(ok, default=0),
    }  # fmt: skip
    print(f"\nbudget race ({headroom} tokens left): {json.dumps(figures)}")
    assert spent == spent_before + sum(ok)
    assert ok and refused, figures
    assert all(error_code(r) == "1113" and r.headers["x-should-retry"] == "false" for r in refused)
    assert spent - budget <= max(ok), f"overshoot beyond one request: {figures}"
    if headroom == 1:
        assert len(ok) == 1, figures
