"""Reliability of a gateway model: breaker, balancing, retry budget, Retry-After, health checks,
concurrency limits, fallback to the embedded model; and what each upstream kind is sent."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jwt
import pytest
from openai import OpenAI

from glmserve.engines.llamacpp.models import QWEN_CODER_05B

from .fake_upstream import ANSWER, FakeUpstream
from .prometheus import moved, scrape, value
from .server_process import GlmServe, free_port
from .sse import assert_chunk_sequence, post_stream
from .upstream_gateway import UPSTREAM_KEY_ENV, ask, gateway_client, start_gateway

ZHIPU_KEY = "0123456789abcdef0123456789abcdef.UpstreamSecret16"
FAST = {"connect": 1.0, "first_byte": 3.0, "between_chunks": 3.0}


def up(url: str, model: str, **extra: Any) -> dict[str, Any]:
    base = {"kind": "openai", "base_url": url, "model": model, "timeouts": FAST, "health_interval_s": 0}
    return base | extra


def models(fake: FakeUpstream, server: GlmServe) -> dict[str, dict[str, Any]]:
    url = fake.base_url
    closed = f"http://127.0.0.1:{free_port()}/v1"
    return {
        "brk": {
            "retry": {"retries": 0},
            "breaker": {"failures": 2, "cooldown_s": 1.0},
            "deployments": [up(url, "ok-brk")],
        },
        "bal": {"deployments": [up(url, "ok-bal-a", weight=3), up(url, "ok-bal-b", weight=1)]},
        "outage": {
            "retry": {
                "retries": 3,
                "budget_ratio": 0.1,
                "budget_min": 2,
                "budget_window_s": 120,  # the whole test falls in one window, however slow the machine
                "backoff_s": 0.01,
                "backoff_max_s": 0.02,
            },
            "breaker": {"failures": 0},
            "deployments": [up(url, "status:503"), up(url, "status:503")],
        },
        "ra": {"deployments": [up(url, "ok-r429")]},
        "ra-long": {"deployments": [up(url, "ok-r429long")]},
        "ra-mid": {"retry": {"max_wait_s": 1}, "deployments": [up(url, "ok-r429mid")]},
        "mc": {"deployments": [up(url, "slow:1.5", max_concurrency=1)]},
        "hc": {
            "deployments": [
                up(url, "ok-hc-a", health_path="health/a", health_interval_s=0.2),
                up(url, "ok-hc-b", health_path="health/b", health_interval_s=0.2),
            ]
        },
        "zj": {
            "deployments": [up(url, "zhipu_ok", kind="zhipu", auth="jwt", api_key_env=UPSTREAM_KEY_ENV)],
        },
        "vr": {"deployments": [up(url, "vllm_reasoning", kind="vllm")]},
        "whole": {"deployments": [up(url, "ignore_stream", kind="llamacpp")]},
        "tools": {"deployments": [up(url, "ok-tooling", kind="sglang")]},
        "to-embedded": {
            "deployments": [
                up(closed, "ok-never-reached"),
                {"kind": "embedded", "gguf": server.model_path, "priority": 1},
            ],
            # glm-4.5-flash's own defaults, so the fallback answers as the direct model does
            "sampling": QWEN_CODER_05B.sampling.as_dict(),
        },
    }


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(chunks=10) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gateway(
    fake: FakeUpstream, server: GlmServe, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GlmServe]:
    with start_gateway(tmp_path_factory.mktemp("reliability"), models(fake, server), ZHIPU_KEY) as started:
        yield started


@pytest.fixture
def gw(gateway: GlmServe, fake: FakeUpstream) -> Iterator[httpx.Client]:
    with gateway_client(gateway, fake, timeout_s=60) as client:
        yield client


def deployments(gateway: GlmServe, model: str) -> list[dict[str, Any]]:
    return [d for d in gateway.health()["deployments"] if d["model"] == model]


def test_breaker_opens_after_consecutive_failures_and_recovers(
    gw: httpx.Client, gateway: GlmServe, fake: FakeUpstream
) -> None:
    labels = {"model": "brk", "deployment": deployments(gateway, "brk")[0]["deployment"]}
    before = scrape(gateway.root)
    fake.set_default("ok-brk", "status:500")
    assert [gw.post("chat/completions", json=ask("brk")).status_code for _ in range(2)] == [502, 502]
    shed = gw.post("chat/completions", json=ask("brk"))
    assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
    assert shed.json()["error"]["code"] == "1305"
    assert len(fake.requests_for("ok-brk")) == 2, "an open breaker sends nothing upstream"
    assert deployments(gateway, "brk")[0]["breaker"] == "open"
    opened = scrape(gateway.root)
    assert moved(before, opened, "glmserve_upstream_errors_total", **labels) == 2
    assert (
        value(before, "glmserve_breaker_state", **labels),
        value(opened, "glmserve_breaker_state", **labels),
    ) == (0, 2)

    fake.set_default("ok-brk", None)
    time.sleep(int(shed.headers["retry-after"]))  # exactly the advertised wait, then the probe gets in
    assert gw.post("chat/completions", json=ask("brk")).status_code == 200
    assert deployments(gateway, "brk")[0]["breaker"] == "closed"
    assert value(scrape(gateway.root), "glmserve_breaker_state", **labels) == 0
    assert len(fake.requests_for("ok-brk")) == 3


def test_balancing_spreads_load_by_weight(gw: httpx.Client, gateway: GlmServe, fake: FakeUpstream) -> None:
    for _ in range(40):
        assert gw.post("chat/completions", json=ask("bal")).status_code == 200
    assert (len(fake.requests_for("ok-bal-a")), len(fake.requests_for("ok-bal-b"))) == (30, 10)
    usage = gw.get(f"{gateway.root}/admin/usage", params={"model": "bal", "limit": 100})
    assert usage.status_code == 200, usage.text
    served = Counter(row["deployment"] for row in usage.json()["data"])
    assert served == {"bal#0": 30, "bal#1": 10}, "each usage row names the deployment that answered"

    fake.set_default("ok-bal-a", "slow:0.2")
    fake.set_default("ok-bal-b", "slow:0.2")
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: gw.post("chat/completions", json=ask("bal")).status_code, range(40)))
    assert codes == [200] * 40
    a, b = len(fake.requests_for("ok-bal-a")) - 30, len(fake.requests_for("ok-bal-b")) - 10
    assert 0.6 <= a / (a + b) <= 0.9, (a, b)


def test_full_outage_never_retries_beyond_the_budget(gw: httpx.Client, fake: FakeUpstream) -> None:
    requests = 40
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: gw.post("chat/completions", json=ask("outage")), range(requests)))
    assert {a.status_code for a in answers} == {503}
    assert {a.json()["error"]["code"] for a in answers} == {"1305"}
    attempts = len(fake.requests_for("status:503"))
    first_rounds = 2 * requests  # every request tries both deployments once (fallback)
    budget = max(2, math.floor(0.1 * requests))  # budget_ratio of the requests, budget_min the floor
    retry_rounds = (attempts - first_rounds) / 2  # a retry round tries both deployments again
    # Each request wants 3 more rounds, so the budget is spent to the last round, never beyond.
    assert retry_rounds == budget == 4, attempts


def test_short_retry_after_is_waited_out(gw: httpx.Client, gateway: GlmServe, fake: FakeUpstream) -> None:
    fake.script("ok-r429", ["status:429:1"])
    response = gw.post("chat/completions", json=ask("ra"))
    seen = [(r.behaviour, r.outcome, round(r.started, 3)) for r in fake.requests_for("ok-r429")]
    assert response.status_code == 200, (response.text, seen, deployments(gateway, "ra"))
    first, second = fake.requests_for("ok-r429")
    assert second.started - first.started >= 0.9


def test_long_retry_after_goes_back_to_the_client(gw: httpx.Client, fake: FakeUpstream) -> None:
    fake.script("ok-r429long", ["status:429:30"])
    response = gw.post("chat/completions", json=ask("ra-long"))
    assert response.status_code == 429 and response.headers["retry-after"] == "30"
    again = gw.post("chat/completions", json=ask("ra-long"))
    assert again.status_code == 429 and 25 <= int(again.headers["retry-after"]) <= 30
    assert len(fake.requests_for("ok-r429long")) == 1, "no request goes upstream before Retry-After"


def test_retry_after_passed_to_the_client_is_right(gw: httpx.Client, fake: FakeUpstream) -> None:
    """Longer than ``max_wait_s``: the client gets the upstream's Retry-After, and waiting it gets in."""
    fake.script("ok-r429mid", ["status:429:2"])
    refused = gw.post("chat/completions", json=ask("ra-mid"))
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "2"), refused.text
    refused_at = time.monotonic()
    again = gw.post("chat/completions", json=ask("ra-mid"))
    assert again.status_code == 429 and again.headers["retry-after"] in ("1", "2")
    assert len(fake.requests_for("ok-r429mid")) == 1, "no request goes upstream before Retry-After"
    time.sleep(max(0.0, refused_at + int(refused.headers["retry-after"]) - time.monotonic()))
    admitted = gw.post("chat/completions", json=ask("ra-mid"))
    assert admitted.status_code == 200, admitted.text
    assert len(fake.requests_for("ok-r429mid")) == 2


def test_max_concurrency_sheds_with_429(gw: httpx.Client) -> None:
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(gw.post, "chat/completions", json=ask("mc"))
        time.sleep(0.5)
        second = gw.post("chat/completions", json=ask("mc"))
        assert second.status_code == 429 and second.json()["error"]["code"] == "1302"
        assert first.result().status_code == 200


def test_failing_health_check_takes_a_deployment_out_and_back(
    gw: httpx.Client, gateway: GlmServe, fake: FakeUpstream
) -> None:
    fake.unhealthy.add("a")
    deadline = time.monotonic() + 5
    while deployments(gateway, "hc")[0]["healthy"] is not False and time.monotonic() < deadline:
        time.sleep(0.05)
    before = len(fake.requests_for("ok-hc-a"))
    for _ in range(6):
        assert gw.post("chat/completions", json=ask("hc")).status_code == 200
    assert len(fake.requests_for("ok-hc-a")) == before and len(fake.requests_for("ok-hc-b")) >= 6

    fake.unhealthy.clear()
    deadline = time.monotonic() + 5
    while deployments(gateway, "hc")[0]["healthy"] is not True and time.monotonic() < deadline:
        time.sleep(0.05)
    for _ in range(6):
        assert gw.post("chat/completions", json=ask("hc")).status_code == 200
    assert len(fake.requests_for("ok-hc-a")) > before
    assert fake.health_checks("a") >= 2


def test_zhipu_upstream_gets_a_jwt_thinking_and_its_value_ranges(
    gw: httpx.Client, fake: FakeUpstream
) -> None:
    body = ask("zj", temperature=0, thinking={"type": "enabled"})
    response = gw.post("chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == 10, "Zhipu's usage on the finish chunk is read"
    record = fake.requests_for("zhipu_ok")[-1]
    token = record.headers["authorization"].removeprefix("Bearer ")
    key_id, secret = ZHIPU_KEY.split(".")
    assert jwt.get_unverified_header(token)["sign_type"] == "SIGN"
    claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["api_key"] == key_id and claims["exp"] > time.time() * 1000
    assert record.body["thinking"] == {"type": "enabled"} and "stream_options" not in record.body
    assert (record.body["temperature"], record.body["do_sample"]) == (0.01, False)


def test_vllm_reasoning_field_becomes_reasoning_content(gw: httpx.Client, fake: FakeUpstream) -> None:
    response = gw.post("chat/completions", json=ask("vr", thinking={"type": "disabled"}))
    message = response.json()["choices"][0]["message"]
    assert message["reasoning_content"] == "Let me think." and message["content"] == ANSWER
    assert fake.requests_for("vllm_reasoning")[-1].body["chat_template_kwargs"] == {"enable_thinking": False}


def test_an_upstream_that_ignores_stream_is_read_whole(gw: httpx.Client) -> None:
    stream = post_stream(gw, ask("whole", stream_options={"include_usage": True}))
    assert stream.status_code == 200
    assert_chunk_sequence(stream.chunks, include_usage=True)
    assert stream.content == ANSWER


def test_upstream_tool_calls_reach_the_sdk_as_openai_tool_calls(gateway: GlmServe) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    sdk = OpenAI(api_key=gateway.api_key, base_url=gateway.paas_url, max_retries=0)
    reply = sdk.chat.completions.create(
        model="tools", messages=[{"role": "user", "content": "w?"}], tools=tools
    )
    call = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert (call.id, call.function.name, call.function.arguments) == (  # type: ignore[union-attr]
        "call_fake_0",
        "get_weather",
        '{"city": "Beijing"}',
    )
    with sdk.chat.completions.stream(
        model="tools", messages=[{"role": "user", "content": "w?"}], tools=tools
    ) as s:
        final = s.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert (streamed.id, streamed.function.name, streamed.function.arguments) == (
        "call_fake_0",
        "get_weather",
        '{"city": "Beijing"}',
    )


def test_an_upstream_falls_back_to_the_embedded_model(
    gw: httpx.Client, gateway: GlmServe, http: httpx.Client
) -> None:
    body = ask("to-embedded", temperature=0, max_tokens=8)
    response = gw.post("chat/completions", json=body)
    assert response.status_code == 200, response.text
    direct = http.post("chat/completions", json=body | {"model": "glm-4.5-flash"}).json()
    assert response.json()["choices"][0]["message"]["content"] == direct["choices"][0]["message"]["content"]
    upstream, embedded = deployments(gateway, "to-embedded")
    assert (upstream["failures"], embedded["requests"]) == (1, 1)
