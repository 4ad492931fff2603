"""The response cache: deterministic requests answered from finished generations, and single-flight.

A request is cacheable when its answer is determined by its input: greedy decoding
(``do_sample: false`` or ``temperature: 0``) or a ``seed``. Its key is a hash of the scope (the
API key's id, or ``shared``), the public model name after alias resolution, and the resolved
``Generation`` (messages, tools, response format, sampling, thinking); ``request_id``, ``user``
and ``stream`` are not part of it, so a streamed answer can be replayed as JSON and back.

``Cache-Control: no-cache`` skips the lookup (and joining a generation in flight);
``no-store`` keeps the answer out of the cache.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from glmserve.caching.single_flight import Flight, SingleFlight
from glmserve.caching.store import CacheStore, MemoryStore, RedisStore
from glmserve.config.cache import CacheSettings
from glmserve.engines.base import Event, Generation, Progress

log = logging.getLogger("glmserve.caching.cache")
Generate = Callable[[], AsyncIterator[Event]]


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    deduplicated: int = 0
    stores: int = 0
    generations: int = 0  # engine generations started for chat requests, cached or not

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class _StatsCollector(Collector):
    def __init__(self, stats: CacheStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        for name, value in self.stats.as_dict().items():
            yield CounterMetricFamily(f"glmserve_cache_{name}", f"Response cache: {name}", value=value)


@dataclass(frozen=True, slots=True)
class CacheControl:
    no_cache: bool = False
    no_store: bool = False

    @classmethod
    def parse(cls, header: str | None) -> CacheControl:
        directives = {d.strip().split("=", 1)[0].lower() for d in (header or "").split(",")}
        return cls(no_cache="no-cache" in directives, no_store="no-store" in directives)


@dataclass(frozen=True, slots=True)
class Lookup:
    """The events to answer with, and the ``x-cache`` header (None: the cache is off)."""

    events: AsyncIterator[Event]
    status: str | None


def is_deterministic(generation: Generation) -> bool:
    """Greedy or seeded: the same request gives the same answer, so it may be cached."""
    return generation.sampling.temperature == 0 or generation.sampling.seed is not None


def _canonical(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(value)
    raise TypeError(f"not canonicalisable: {type(value).__name__}")


def cache_key(scope: str, model: str, generation: Generation) -> str:
    body = {"scope": scope, "model": model, "generation": asdict(generation)}
    raw = orjson.dumps(body, default=_canonical, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()


async def _replay(events: list[Event]) -> AsyncIterator[Event]:
    for ev in events:
        yield ev


class ResponseCache:
    def __init__(self, settings: CacheSettings, store: CacheStore, registry: CollectorRegistry | None = None):
        self.settings = settings
        self.store = store
        self.stats = CacheStats()
        self.flights = SingleFlight()
        self._registry = registry
        self._collector = _StatsCollector(self.stats)
        if registry is not None:
            registry.register(self._collector)

    def evicted(self) -> None:
        self.stats.evictions += 1

    def _generate(self, generate: Generate) -> AsyncIterator[Event]:
        self.stats.generations += 1
        return generate()

    async def open(
        self,
        *,
        model: str,
        generation: Generation,
        scope: str | None,
        cache_control: str | None,
        generate: Generate,
    ) -> Lookup:
        """The events for ``generation``: replayed, shared with an identical one in flight, or new."""
        policy = self.settings.policy(model)
        if not self.settings.enabled:
            return Lookup(self._generate(generate), None)
        if not policy.enabled or not is_deterministic(generation):
            return Lookup(self._generate(generate), "MISS")
        shared = self.settings.scope == "shared"
        key = cache_key("shared" if shared else f"key:{scope or '-'}", model, generation)
        control = CacheControl.parse(cache_control)
        if not control.no_cache:
            cached = await self.store.get(key)
            if cached is not None:
                self.stats.hits += 1
                return Lookup(_replay(cached), "HIT")
        self.stats.misses += 1
        if self.settings.dedupe and not control.no_cache:
            flight = self.flights.find(key)
            if flight is not None:
                self.stats.deduplicated += 1
                return Lookup(flight.subscribe(), "MISS")
        if control.no_store:
            return Lookup(self._generate(generate), "MISS")
        ttl_s = policy.ttl_s or self.settings.ttl_s

        async def keep(done: Flight) -> None:
            if done.clean:  # a replay ends in its Usage: the running counts are not kept
                await self.store.put(key, [ev for ev in done.events if not isinstance(ev, Progress)], ttl_s)
                self.stats.stores += 1

        source = self._generate(generate)
        if self.settings.dedupe and not control.no_cache:
            return Lookup(self.flights.start(key, source, keep).subscribe(), "MISS")
        return Lookup(Flight(source, keep).subscribe(), "MISS")

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = {"enabled": self.settings.enabled, "backend": self.settings.backend}
        body.update(self.stats.as_dict())
        body["in_flight"] = len(self.flights)
        if isinstance(self.store, MemoryStore):
            body["entries"] = len(self.store)
        return body

    async def close(self) -> None:
        if self._registry is not None:
            self._registry.unregister(self._collector)
        await self.flights.close()
        await self.store.close()


async def open_cache(
    settings: CacheSettings, redis_url: str | None, registry: CollectorRegistry | None = None
) -> ResponseCache:
    """Redis when ``backend`` is ``redis`` (checked now, so a bad URL fails the start), else memory."""
    if settings.backend == "redis":
        url = settings.redis_url or redis_url
        if url is None:
            raise ValueError("cache.backend is 'redis' but neither cache.redis_url nor redis_url is set")
        store = RedisStore(url, settings.redis_prefix)
        try:
            await store.ping()
        except BaseException:
            await store.close()
            raise
        return ResponseCache(settings, store, registry)
    memory = MemoryStore(settings.max_entries)
    cache = ResponseCache(settings, memory, registry)
    memory.on_evict = cache.evicted
    return cache
