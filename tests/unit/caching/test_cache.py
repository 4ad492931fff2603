"""The response cache's parts: keys, the LRU+TTL store, the event codec, single-flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from glmserve.caching.cache import CacheControl, cache_key, is_deterministic
from glmserve.caching.single_flight import Flight, SingleFlight
from glmserve.caching.store import MemoryStore, decode_events, encode_events
from glmserve.engines.base import Event, Finish, Logprobs, Text, ToolCall, Usage
from glmserve.frontends.chat.plan import to_generation
from glmserve.frontends.chat.protocol import ChatCompletionRequest

EVENTS: list[Event] = [Text("hi"), ToolCall(0, "call_1", "f", "{}"), Finish("stop"), Usage(3, 1)]


def request(**extra: object) -> ChatCompletionRequest:
    body = {"model": "glm-4.6", "messages": [{"role": "user", "content": "hi"}], **extra}
    return ChatCompletionRequest.model_validate(body)


def key(scope: str = "key:a", **extra: object) -> str:
    return cache_key(scope, "glm-4.6", to_generation(request(**extra)))


def test_key_ignores_request_id_user_and_stream() -> None:
    base = key(temperature=0)
    assert key(temperature=0, request_id="r1", user="u", stream=True) == base
    assert key(temperature=0, max_tokens=5) != base
    assert key("key:b", temperature=0) != base
    assert key("shared", temperature=0) != base


@pytest.mark.parametrize(
    ("extra", "cacheable"),
    [({"temperature": 0}, True), ({"do_sample": False}, True), ({"seed": 7}, True),
     ({}, False), ({"temperature": 0.7}, False)],
)  # fmt: skip
def test_only_deterministic_requests_are_cacheable(extra: dict[str, object], cacheable: bool) -> None:
    assert is_deterministic(to_generation(request(**extra))) is cacheable


def test_cache_control_directives() -> None:
    assert CacheControl.parse("No-Cache, max-age=0") == CacheControl(no_cache=True)
    assert CacheControl.parse("no-store") == CacheControl(no_store=True)
    assert CacheControl.parse(None) == CacheControl()


def test_events_round_trip_through_json() -> None:
    assert decode_events(encode_events(EVENTS)) == EVENTS


def test_logprobs_round_trip_through_json() -> None:
    entry = {"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": []}
    events = [Logprobs((entry,)), Text("Hi"), Finish("stop")]
    assert decode_events(encode_events(events)) == events


def test_memory_store_expires_and_evicts_least_recently_used() -> None:
    asyncio.run(_lru_and_ttl())


async def _lru_and_ttl() -> None:
    now = [0.0]
    evicted: list[int] = []
    store = MemoryStore(2, on_evict=lambda: evicted.append(1), clock=lambda: now[0])
    await store.put("a", EVENTS, 10)
    await store.put("b", EVENTS, 10)
    assert await store.get("a") == EVENTS  # a is now the most recent
    await store.put("c", EVENTS, 10)
    assert await store.get("b") is None and len(evicted) == 1
    now[0] = 10.0
    assert await store.get("a") is None and await store.get("c") is None


async def _slow(events: list[Event], started: list[int], closed: list[int]) -> AsyncIterator[Event]:
    started.append(1)
    try:
        for ev in events:
            await asyncio.sleep(0.01)
            yield ev
    finally:
        closed.append(1)


def test_single_flight_fans_out_and_cancels_only_when_all_leave() -> None:
    asyncio.run(_fan_out_and_cancel())


async def _fan_out_and_cancel() -> None:
    started: list[int] = []
    closed: list[int] = []
    done: list[Flight] = []

    async def on_done(flight: Flight) -> None:
        done.append(flight)

    flights = SingleFlight()
    flight = flights.start("k", _slow(EVENTS, started, closed), on_done)
    first, second = flight.subscribe(), flight.subscribe()
    assert await anext(first) == EVENTS[0]
    await first.aclose()  # one leaves; the other still gets everything
    assert [ev async for ev in second] == EVENTS
    await flight.wait()
    assert started == [1] and done == [flight] and flight.clean and flights.find("k") is None

    lonely = flights.start("k2", _slow(EVENTS * 50, started, closed), on_done)
    sub = lonely.subscribe()
    await anext(sub)
    await sub.aclose()  # the last one leaves: the generation stops
    await lonely.wait()
    assert lonely.cancelled and not lonely.clean and len(closed) == 2
