"""Faults of an upstream, injected by a fake upstream, as the gateway's clients see them.

Before the first byte reaches the client a failure is retried or falls back transparently;
after it the client gets what arrived, ``finish_reason: "network_error"`` and an in-band error.
Nothing hangs, and every upstream request the gateway gave up on is closed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .fake_upstream import ANSWER, FakeUpstream
from .server_process import GlmServe, free_port
from .sse import assert_chunk_sequence, assert_framing, parse_events, post_stream
from .upstream_gateway import UPSTREAM_KEY_ENV, ask, gateway_client, start_gateway

UPSTREAM_SECRET = "upstream-secret-for-tests"
FAST = {"connect": 1.0, "first_byte": 1.5, "between_chunks": 1.0}
NO_BREAKER = {"failures": 0}
QUICK = {"retries": 1, "backoff_s": 0.05, "backoff_max_s": 0.1}
# gateway model -> the fault of its first deployment (a fallback that answers comes second)
BEFORE_FIRST_BYTE = {
    "refused": "ok",  # its base_url is a closed port
    "reset_before": "reset_before",
    "stall_before": "stall_before",
    "status_500": "status:500",
    "zhipu_200_error": "zhipu_200_error:1305",
    "sse_error": "sse_error",
    "invalid_json": "invalid_json",
    "redirect": "redirect",
}
AFTER_FIRST_BYTE = {
    "reset_mid": "reset_mid",
    "stall_mid": "stall_mid",
    "sse_error_mid": "sse_error_mid",
    "cut": "cut",
    "invalid_json_mid": "invalid_json_mid",
    "drip_too_slow": "drip:2.5",
}
FULL_ANSWER = ANSWER


def deployment(url: str, model: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "openai",
        "base_url": url,
        "model": model,
        "api_key_env": UPSTREAM_KEY_ENV,
        "timeouts": FAST,
        "health_interval_s": 0,
        **extra,
    }


def models(fake: FakeUpstream) -> dict[str, dict[str, Any]]:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    table: dict[str, dict[str, Any]] = {}
    for name, fault in {**BEFORE_FIRST_BYTE, **AFTER_FIRST_BYTE}.items():
        first = deployment(closed if name == "refused" else fake.base_url, fault)
        table[name] = {
            "retry": QUICK,
            "breaker": NO_BREAKER,
            "deployments": [first, deployment(fake.base_url, f"ok-{name}", priority=1)],
        }
    table["solo-stall"] = {
        "retry": {"retries": 0},
        "deployments": [deployment(fake.base_url, "stall_before")],
    }
    table["solo-zhipu-1261"] = {"deployments": [deployment(fake.base_url, "zhipu_200_error:1261")]}
    table["drip"] = {"deployments": [deployment(fake.base_url, "drip:0.3")]}
    table["disconnect"] = {"deployments": [deployment(fake.base_url, "ok-disconnect")]}
    table["plain"] = {"deployments": [deployment(fake.base_url, "ok-plain")]}
    return table


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(chunks=10) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlmServe]:
    with start_gateway(tmp_path_factory.mktemp("faults"), models(fake), UPSTREAM_SECRET) as started:
        yield started


@pytest.fixture
def gw(gateway: GlmServe, fake: FakeUpstream) -> Iterator[httpx.Client]:
    with gateway_client(gateway, fake, timeout_s=30) as client:
        yield client


@pytest.mark.parametrize("name", BEFORE_FIRST_BYTE)
def test_before_first_byte_falls_back_transparently(gw: httpx.Client, fake: FakeUpstream, name: str) -> None:
    stream = post_stream(gw, ask(name))
    assert stream.status_code == 200, stream.text
    assert_framing(stream.text)
    assert_chunk_sequence(stream.chunks, include_usage=False)
    assert stream.content == FULL_ANSWER
    assert len(fake.requests_for(f"ok-{name}")) == 1

    response = gw.post("chat/completions", json=ask(name))
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == FULL_ANSWER
    assert not [r for r in fake.records if r.path.startswith("/elsewhere")], "a redirect was followed"


@pytest.mark.parametrize("name", AFTER_FIRST_BYTE)
def test_after_first_byte_the_client_gets_network_error_in_band(
    gw: httpx.Client, fake: FakeUpstream, name: str
) -> None:
    started = time.monotonic()
    stream = post_stream(gw, ask(name))
    assert stream.status_code == 200
    assert time.monotonic() - started < 15
    chunks = parse_events(stream.text)
    content = [c for c in chunks if "choices" in c]
    errors = [c for c in chunks if "error" in c]
    assert "".join(ch["delta"].get("content") or "" for c in content for ch in c["choices"]).startswith(
        "Hello"
    )
    assert content[-1]["choices"][0]["finish_reason"] == "network_error"
    assert len(errors) == 1 and errors[0]["error"]["code"] == "1234", errors
    assert stream.text.rstrip().endswith("}"), "no [DONE] after an error"
    assert fake.requests_for(f"ok-{name}") == [], "nothing is retried once the client has bytes"


@pytest.mark.parametrize("name", ["reset_mid", "cut"])
def test_after_first_byte_without_streaming_is_an_http_error(gw: httpx.Client, name: str) -> None:
    response = gw.post("chat/completions", json=ask(name))
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "1234"


def test_stall_without_fallback_times_out_as_504(gw: httpx.Client, fake: FakeUpstream) -> None:
    started = time.monotonic()
    response = gw.post("chat/completions", json=ask("solo-stall"))
    assert response.status_code == 504, response.text
    assert time.monotonic() - started < 10
    # glmserve closed its upstream connection; the fake, in its own thread, may see the close a
    # moment after the client has the 504
    record, answered = fake.requests_for("stall_before")[-1], time.monotonic()
    while record.outcome != "client_closed" and time.monotonic() - answered < 2.0:
        time.sleep(0.01)
    assert record.outcome == "client_closed", record.outcome


def test_zhipu_error_in_http_200_reaches_the_client_as_its_error(gw: httpx.Client) -> None:
    response = gw.post("chat/completions", json=ask("solo-zhipu-1261"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "1261"


def test_slow_drip_within_the_timeout_streams_to_the_end(gw: httpx.Client) -> None:
    stream = post_stream(gw, ask("drip", stream_options={"include_usage": True}))
    assert stream.status_code == 200
    assert_framing(stream.text)
    usage = assert_chunk_sequence(stream.chunks, include_usage=True)
    assert usage["completion_tokens"] == 10
    assert stream.content.startswith("Hello")


def test_client_disconnect_closes_the_upstream_request_within_a_second(
    gateway: GlmServe, fake: FakeUpstream
) -> None:
    fake.script("ok-disconnect", ["drip:0.5"])
    headers = {"Authorization": f"Bearer {gateway.api_key}"}
    with httpx.Client(base_url=gateway.paas_url, headers=headers, timeout=30) as client:
        with client.stream("POST", "chat/completions", json=ask("disconnect", stream=True)) as response:
            lines = response.iter_lines()
            while not next(lines).startswith("data: "):
                pass
        closed_at = time.monotonic()
    deadline = closed_at + 5
    record = fake.requests_for("ok-disconnect")[-1]
    while record.ended is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert record.outcome == "client_closed"
    assert record.ended is not None and record.ended - closed_at <= 1.0


def test_upstream_sees_only_its_own_key_and_always_asks_for_usage(
    gw: httpx.Client, gateway: GlmServe, fake: FakeUpstream
) -> None:
    response = gw.post("chat/completions", json=ask("plain", max_tokens=5))
    assert response.status_code == 200
    assert response.json()["usage"]["completion_tokens"] == len(ANSWER.split())
    record = fake.requests_for("ok-plain")[-1]
    assert record.headers["authorization"] == f"Bearer {UPSTREAM_SECRET}"
    assert all(gateway.api_key not in value for value in record.headers.values())
    assert record.body["stream"] is True and record.body["stream_options"] == {"include_usage": True}
    assert record.body["max_completion_tokens"] == 5
    assert "temperature" not in record.body, "glmserve's own default is not imposed on the upstream"


def test_config_file_is_the_only_source_of_upstream_urls(gw: httpx.Client, fake: FakeUpstream) -> None:
    before = len(fake.records)
    body = ask("plain") | {"base_url": "http://127.0.0.1:1/v1", "api_base": "http://127.0.0.1:1/v1"}
    response = gw.post("chat/completions", json=body, headers={"x-upstream-url": "http://127.0.0.1:1"})
    assert response.status_code == 200
    assert len(fake.records) == before + 1


def test_models_command_prints_each_deployment_with_its_health(gateway: GlmServe) -> None:
    config = gateway.log_path.parent / "gateway.toml"
    done = gateway.cli("models", "--config", str(config))
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["MODEL", "#", "KIND"]
    refused = next(i for i, line in enumerate(lines) if line.startswith("refused "))
    assert lines[refused].rstrip().endswith("DOWN")
    assert "up (" in lines[refused + 1]


def test_the_fake_upstream_refuses_names_that_are_no_scenario(fake: FakeUpstream) -> None:
    """A typo in a deployment's model must fail its test, never quietly answer like ``ok``."""
    with pytest.raises(ValueError, match="names no scenario"):
        fake.set_default("ok-typo", "reset_befor")
    with pytest.raises(ValueError, match="names no scenario"):
        fake.script("ok-typo", ["ok", "stal_mid"])
    response = httpx.post(f"{fake.base_url}/chat/completions", json={"model": "okay-typo"}, timeout=5)
    assert response.status_code == 500 and "'okay-typo' names no scenario" in response.text
    assert fake.unknown == ["okay-typo"]
    fake.unknown.clear()  # seen here on purpose; the fixture's exit fails on any left over
