"""The response cache and in-flight de-duplication, against real servers with the cache on."""

from __future__ import annotations

import concurrent.futures
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from . import server_process
from .accounts import TIMEOUT_S, admin, create_key
from .credentials import new_zhipu_key
from .fake_upstream import FakeUpstream
from .server_process import GlmServe
from .sse import assert_chunk_sequence, assert_framing, joined_content, parse_events
from .upstream_gateway import start_gateway
from .wire_schema import assert_completion

TTL_MODEL = "glm-4.5-flash"  # given a 1 s TTL below
CACHE_ENV = {
    "GLMSERVE_CACHE__ENABLED": "true",
    "GLMSERVE_CACHE__MAX_ENTRIES": "3",
    "GLMSERVE_CACHE__MODELS": json.dumps({TTL_MODEL: {"ttl_s": 1}}),
    "GLMSERVE_ENGINE__PARALLEL": "2",
}


@pytest.fixture(scope="module")
def cached(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlmServe]:
    log = tmp_path_factory.mktemp("cache") / "server.log"
    with server_process.start(data_dir, log, new_zhipu_key(), CACHE_ENV) as started:
        yield started


def body(prompt: str, max_tokens: int = 4, **extra: Any) -> dict[str, Any]:
    return {
        "model": "glm-4.6",
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": max_tokens,
        **extra,
    }


def unique(word: str) -> str:
    return f"Say {word} ({secrets.token_hex(3)})."


def send(server: GlmServe, payload: dict[str, Any], key: str | None = None, **headers: str) -> httpx.Response:
    auth = {"Authorization": f"Bearer {key or server.api_key}", **headers}
    with httpx.Client(timeout=TIMEOUT_S) as http:
        return http.post(server.paas_url + "chat/completions", json=payload, headers=auth)


def post(server: GlmServe, payload: dict[str, Any], key: str | None = None, **headers: str) -> httpx.Response:
    response = send(server, payload, key, **headers)
    assert response.status_code == 200, response.text
    return response


def stream(server: GlmServe, payload: dict[str, Any], key: str | None = None) -> httpx.Response:
    response = post(server, {**payload, "stream": True}, key)
    assert_framing(response.text)
    return response


def stats(server: GlmServe) -> dict[str, int]:
    cache: dict[str, int] = server.health()["cache"]
    return cache


def answer(response: httpx.Response) -> str:
    return str(response.json()["choices"][0]["message"]["content"])


def test_hit_after_miss_with_the_same_answer(cached: GlmServe) -> None:
    payload = body(unique("apple"))
    before = stats(cached)
    started = time.perf_counter()
    miss = post(cached, payload)
    miss_s = time.perf_counter() - started
    hits_s = []
    for _ in range(3):
        started = time.perf_counter()
        hit = post(cached, {**payload, "request_id": secrets.token_hex(4), "user": "someone"})
        hits_s.append(time.perf_counter() - started)
        assert hit.headers["x-cache"] == "HIT"
        assert_completion(hit.json())
        assert answer(hit) == answer(miss) and hit.json()["usage"] == miss.json()["usage"]
        assert hit.json()["id"] != miss.json()["id"]
    assert miss.headers["x-cache"] == "MISS"
    after = stats(cached)
    assert after["generations"] - before["generations"] == 1
    assert after["hits"] - before["hits"] == 3
    print(f"\ncache: miss {miss_s * 1000:.0f} ms, hits {', '.join(f'{s * 1000:.1f}' for s in hits_s)} ms")


def test_non_deterministic_requests_are_never_cached(cached: GlmServe) -> None:
    payload = body(unique("pear"), temperature=0.8)
    before = stats(cached)
    assert [post(cached, payload).headers["x-cache"] for _ in range(2)] == ["MISS", "MISS"]
    assert stats(cached)["generations"] - before["generations"] == 2


def test_no_cache_skips_the_lookup_and_no_store_keeps_it_out(cached: GlmServe) -> None:
    payload = body(unique("plum"))
    assert post(cached, payload, **{"Cache-Control": "no-store"}).headers["x-cache"] == "MISS"
    assert post(cached, payload).headers["x-cache"] == "MISS"  # no-store left nothing behind
    assert post(cached, payload, **{"Cache-Control": "no-cache"}).headers["x-cache"] == "MISS"
    assert post(cached, payload).headers["x-cache"] == "HIT"


def test_ttl_expiry_per_model(cached: GlmServe) -> None:
    payload = {**body(unique("fig")), "model": TTL_MODEL}
    assert post(cached, payload).headers["x-cache"] == "MISS"
    assert post(cached, payload).headers["x-cache"] == "HIT"
    time.sleep(1.2)
    assert post(cached, payload).headers["x-cache"] == "MISS"


def test_lru_bound_evicts_the_oldest(cached: GlmServe) -> None:
    payloads = [body(unique(word), max_tokens=1) for word in ("a", "b", "c", "d")]
    before = stats(cached)
    for payload in payloads:
        assert post(cached, payload).headers["x-cache"] == "MISS"
    assert stats(cached)["entries"] == 3 and stats(cached)["evictions"] > before["evictions"]
    assert post(cached, payloads[-1]).headers["x-cache"] == "HIT"
    assert post(cached, payloads[0]).headers["x-cache"] == "MISS"


def test_each_key_has_its_own_cache(cached: GlmServe) -> None:
    created = cached.cli("keys", "create", "--name", "b").stdout
    key_b = next(word for line in created.splitlines() for word in line.split() if word.count(".") == 1)
    payload = body(unique("kiwi"))
    assert post(cached, payload).headers["x-cache"] == "MISS"
    assert post(cached, payload).headers["x-cache"] == "HIT"
    assert post(cached, payload, key_b).headers["x-cache"] == "MISS"


def test_a_json_answer_replays_as_a_stream_and_back(cached: GlmServe) -> None:
    payload = body(unique("lime"))
    original = post(cached, payload)
    replay = stream(cached, payload)
    assert replay.headers["x-cache"] == "HIT"
    chunks = parse_events(replay.text)
    assert_chunk_sequence(chunks, include_usage=False)
    assert joined_content(chunks) == answer(original)

    payload = body(unique("mango"))
    live = stream(cached, {**payload, "stream_options": {"include_usage": True}})
    assert live.headers["x-cache"] == "MISS"
    as_json = post(cached, payload)
    assert as_json.headers["x-cache"] == "HIT"
    assert_completion(as_json.json())
    live_chunks = parse_events(live.text)
    assert answer(as_json) == joined_content(live_chunks)
    again = stream(cached, {**payload, "stream_options": {"include_usage": True}})
    assert_chunk_sequence(parse_events(again.text), include_usage=True)


def test_five_identical_requests_share_one_generation(cached: GlmServe) -> None:
    payload = body(unique("grape"), max_tokens=16)
    before = stats(cached)
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        responses = list(pool.map(lambda _: post(cached, payload), range(5)))
    after = stats(cached)
    generations = after["generations"] - before["generations"]
    shared = (after["deduplicated"] - before["deduplicated"]) + (after["hits"] - before["hits"])
    print(f"\ncache: 5 concurrent identical requests -> {generations} engine generation(s)")
    assert generations == 1 and shared == 4
    assert len({answer(r) for r in responses}) == 1


def test_a_subscriber_leaving_does_not_stop_the_others(cached: GlmServe) -> None:
    payload = {**body(unique("melon"), max_tokens=48), "stream": True}
    auth = {"Authorization": f"Bearer {cached.api_key}"}
    before = stats(cached)
    with (
        httpx.Client(timeout=TIMEOUT_S, headers=auth) as http,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        request = http.build_request("POST", cached.paas_url + "chat/completions", json=payload)
        leaving = http.send(request, stream=True)
        lines = leaving.iter_lines()
        assert next(lines).startswith("data: ")  # the generation is under way
        staying = pool.submit(stream, cached, payload)
        deadline = time.monotonic() + TIMEOUT_S
        while stats(cached)["deduplicated"] == before["deduplicated"]:  # until it has joined
            assert time.monotonic() < deadline and not staying.done(), "the second request never joined"
            time.sleep(0.02)
        assert not staying.done()
        leaving.close()  # the first client goes away mid-generation
        chunks = parse_events(staying.result().text)
    assert_chunk_sequence(chunks, include_usage=False)
    assert chunks[-1]["choices"][0]["finish_reason"] in {"stop", "length"}
    after = stats(cached)
    assert after["generations"] - before["generations"] == 1
    # The generation ran to its end for the one who stayed, so it was cached whole.
    replay = post(cached, {**payload, "stream": False})
    assert replay.headers["x-cache"] == "HIT"
    assert answer(replay) == joined_content(chunks)


def test_a_hit_is_recorded_as_one_and_not_charged(cached: GlmServe) -> None:
    key, key_id = create_key(cached, name="cache-budget", budget_tokens=1_000_000, budget_period="total")
    payload = body(unique("kiwi"))
    miss, hit = post(cached, payload, key), post(cached, payload, key)
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    with admin(cached) as http:
        spent = http.get(f"/admin/keys/{key_id}").json()["budget_used"]
        rows = http.get("/admin/usage", params={"key_id": key_id}).json()["data"]
    charged = miss.json()["usage"]["total_tokens"]
    assert spent == charged, "the hit is not charged (cache.charge_hits is off by default)"
    # (test_cache_hits_spend_budget_and_tpm_only_with_charge_hits sets it both ways)
    by_request = {r["request_id"]: r for r in rows}
    hit_row, miss_row = by_request[hit.json()["request_id"]], by_request[miss.json()["request_id"]]
    assert hit_row["cache_hit"] is True and miss_row["cache_hit"] is False
    assert hit_row["total_tokens"] == charged  # the row still says what the answer holds


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="module", params=[False, True], ids=["charge_hits-off", "charge_hits-on"])
def charging(
    request: pytest.FixtureRequest, upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GlmServe, bool]]:
    """A cache in front of a fake upstream (no engine to load), with ``cache.charge_hits`` off or on."""
    table = {"glm-4.6": {"deployments": [{"kind": "openai", "base_url": upstream.base_url, "model": "ok"}]}}
    env = {**CACHE_ENV, "GLMSERVE_CACHE__CHARGE_HITS": str(request.param).lower()}
    with start_gateway(tmp_path_factory.mktemp("charge-hits"), table, "unused", env) as gateway:
        yield gateway, request.param


def test_cache_hits_spend_budget_and_tpm_only_with_charge_hits(charging: tuple[GlmServe, bool]) -> None:
    server, charge_hits = charging
    key, key_id = create_key(
        server, name="hits", tpm=1_000_000, budget_tokens=1_000_000, budget_period="total"
    )
    payload = body(unique("quince"))
    miss = post(server, payload, key)
    tokens = miss.json()["usage"]["total_tokens"]
    with admin(server) as http:  # room for one more request's tokens in this minute, not two
        assert http.patch(f"/admin/keys/{key_id}", json={"tpm": 2 * tokens - 1}).status_code == 200

    hit = post(server, payload, key)
    again = send(server, payload, key)

    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    if charge_hits:  # the hit counted its tokens: the minute holds 2 * tokens, past the limit
        assert (again.status_code, again.json()["error"]["code"]) == (429, "1303")
    else:  # the hit was free: the minute still holds only the miss
        assert (again.status_code, again.headers["x-cache"]) == (200, "HIT")
    with admin(server) as http:
        spent = http.get(f"/admin/keys/{key_id}").json()["budget_used"]
        rows = {
            r["request_id"]: r for r in http.get("/admin/usage", params={"key_id": key_id}).json()["data"]
        }
    assert spent == (2 if charge_hits else 1) * tokens
    hit_row = rows[hit.json()["request_id"]]
    assert (hit_row["cache_hit"], hit_row["total_tokens"]) == (True, tokens)


@pytest.fixture(scope="module")
def redis_pair(
    data_dir: Path, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[tuple[GlmServe, GlmServe]]:
    prefix = f"glmserve-cache-test-{secrets.token_hex(4)}"
    env = {**CACHE_ENV, "GLMSERVE_REDIS_URL": redis_url, "GLMSERVE_CACHE__BACKEND": "redis",
           "GLMSERVE_CACHE__REDIS_PREFIX": prefix, "GLMSERVE_CACHE__SCOPE": "shared"}  # fmt: skip
    logs = tmp_path_factory.mktemp("cache-redis")
    keys = (new_zhipu_key(), new_zhipu_key())
    with server_process.replica_pair(data_dir, logs, keys, env, redis_url, prefix) as pair:
        yield pair


def test_two_servers_share_a_redis_cache(redis_pair: tuple[GlmServe, GlmServe]) -> None:
    a, b = redis_pair  # different static keys: the shared scope lets them meet
    payload = body(unique("cherry"))
    original = post(a, payload)
    assert original.headers["x-cache"] == "MISS"
    replay = stream(b, payload)
    assert replay.headers["x-cache"] == "HIT"
    assert joined_content(parse_events(replay.text)) == answer(original)
    assert stats(b)["generations"] == 0
