"""Where cached generations live: an in-memory LRU with TTL, or Redis shared by replicas.

A cached value is the list of engine events of one finished generation, so a replay goes through
the same assembler as a live answer, as JSON or as SSE.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from glmserve.engines.base import Event, Finish, Logprobs, Reasoning, Text, ToolCall, Usage

log = logging.getLogger("glmserve.caching.cache")
_KINDS: dict[str, type[Any]] = {
    "text": Text, "reasoning": Reasoning, "tool_call": ToolCall, "finish": Finish, "usage": Usage,
    "logprobs": Logprobs,
}  # fmt: skip
_NAMES = {cls: name for name, cls in _KINDS.items()}


def encode_events(events: list[Event]) -> bytes:
    return orjson.dumps([{"kind": _NAMES[type(ev)], **asdict(ev)} for ev in events])


def decode_events(raw: bytes) -> list[Event]:
    events: list[Event] = []
    for item in orjson.loads(raw):
        cls = _KINDS[item.pop("kind")]
        if cls is Logprobs:
            item["content"] = tuple(item["content"])
        events.append(cls(**item))
    return events


class CacheStore(Protocol):
    async def get(self, key: str) -> list[Event] | None: ...

    async def put(self, key: str, events: list[Event], ttl_s: float) -> None: ...

    async def close(self) -> None: ...


class MemoryStore:
    """A bounded LRU; an entry past its TTL is gone (dropped when next touched)."""

    def __init__(
        self,
        max_entries: int,
        on_evict: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, list[Event]]] = OrderedDict()
        self.on_evict = on_evict
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> list[Event] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, events = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return list(events)

    async def put(self, key: str, events: list[Event], ttl_s: float) -> None:
        self._entries[key] = (self._clock() + ttl_s, list(events))
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self.on_evict()

    async def close(self) -> None:
        self._entries.clear()


class RedisStore:
    """Events as JSON under ``PREFIX:KEY`` with Redis's own expiry; Redis does the evicting.

    Redis failures are logged and read as a miss (or a skipped write): the cache never fails a request.
    """

    def __init__(self, url: str, prefix: str) -> None:
        self.prefix = prefix
        self._redis: Redis = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)

    async def ping(self) -> None:
        await self._redis.ping()

    async def get(self, key: str) -> list[Event] | None:
        try:
            raw = await self._redis.get(f"{self.prefix}:{key}")
        except RedisError as exc:
            log.warning("response cache read failed: %s", type(exc).__name__)
            return None
        return None if raw is None else decode_events(raw)

    async def put(self, key: str, events: list[Event], ttl_s: float) -> None:
        try:
            await self._redis.set(f"{self.prefix}:{key}", encode_events(events), px=max(1, int(ttl_s * 1000)))
        except RedisError as exc:
            log.warning("response cache write failed: %s", type(exc).__name__)

    async def close(self) -> None:
        await self._redis.aclose()
