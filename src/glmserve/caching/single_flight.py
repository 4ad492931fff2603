"""Single-flight generations: identical requests in flight share one engine generation.

A ``Flight`` runs the engine's event stream in a task of its own and buffers every event; each
``Subscription`` replays the buffer from the start and then follows it live, so a request that
joins late still sees the whole answer. A subscriber that leaves does not stop the others: the
generation is cancelled only when the last subscriber has gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from glmserve.engines.base import Event, Finish, Usage

OnDone = Callable[["Flight"], Awaitable[None]]


class Flight:
    def __init__(self, source: AsyncIterator[Event], on_done: OnDone) -> None:
        self.events: list[Event] = []
        self.error: BaseException | None = None
        self.done = False
        self.cancelled = False
        self._subscribers = 0
        self._signal = asyncio.Event()
        self._on_done = on_done
        self._task = asyncio.create_task(self._run(source))

    @property
    def clean(self) -> bool:
        """Ended on its own with a finish and usage: fit to be cached."""
        kinds = {type(ev) for ev in self.events}
        return self.done and self.error is None and not self.cancelled and {Finish, Usage} <= kinds

    def subscribe(self) -> Subscription:
        return Subscription(self)

    async def _run(self, source: AsyncIterator[Event]) -> None:
        try:
            async for ev in source:
                self.events.append(ev)
                self._wake()
        except asyncio.CancelledError:
            self.cancelled = True
        except Exception as exc:  # handed to every subscriber, re-raised there
            self.error = exc
        finally:
            await source.aclose()  # type: ignore[attr-defined]
            self.done = True
            self._wake()
        await self._on_done(self)

    def _wake(self) -> None:
        self._signal.set()
        self._signal = asyncio.Event()

    async def changed(self) -> None:
        await self._signal.wait()

    def join(self) -> None:
        self._subscribers += 1

    def leave(self) -> None:
        self._subscribers -= 1
        if self._subscribers == 0 and not self.done:
            self._task.cancel()

    async def wait(self) -> None:
        """Until the generation task (its cache write included) has ended."""
        await asyncio.gather(self._task, return_exceptions=True)


class Subscription:
    """One request's view of a flight: an async iterator of all its events, with ``aclose``."""

    def __init__(self, flight: Flight) -> None:
        self._flight = flight
        self._next = 0
        self._closed = False
        flight.join()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        flight = self._flight
        while self._next >= len(flight.events):
            if flight.done or self._closed:
                await self.aclose()
                if flight.error is not None:
                    raise flight.error
                raise StopAsyncIteration
            await flight.changed()
        ev = flight.events[self._next]
        self._next += 1
        return ev

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._flight.leave()


class SingleFlight:
    """The flights now running, by cache key; a flight leaves the table when it ends."""

    def __init__(self) -> None:
        self._flights: dict[str, Flight] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def find(self, key: str) -> Flight | None:
        flight = self._flights.get(key)
        return None if flight is None or flight.done else flight

    def start(self, key: str, source: AsyncIterator[Event], on_done: OnDone) -> Flight:
        async def finished(flight: Flight) -> None:
            if self._flights.get(key) is flight:
                del self._flights[key]
            await on_done(flight)

        flight = Flight(source, finished)
        self._flights[key] = flight
        return flight

    async def close(self) -> None:
        flights = list(self._flights.values())
        for flight in flights:
            flight._task.cancel()
        await asyncio.gather(*(f.wait() for f in flights))
