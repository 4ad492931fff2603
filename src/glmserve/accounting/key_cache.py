"""Verified keys kept in memory, so that a request with a stored key costs no database round trip.

An entry is served only while the cache is *current*: its last poll of the key store's epoch
(``KeyStore.epoch``, counted up in the same transaction as every change to a key, by any replica)
started less than ``TRUST_S`` ago. The poll runs every ``POLL_S``; when the epoch has moved, the
whole cache is dropped (keys change rarely, requests are many). A change this process makes drops
it at once (``KeyStore.on_change``). So a revocation, a rotation or a new limit takes effect here
at once and on every other replica within one poll interval plus one poll (well under a second),
and never later than ``TRUST_S`` after the last poll that answered: while the database does not
answer, the cache is not trusted and every lookup reads the database again (where the
authenticator's stale-if-error rule applies).

A rotated-out secret still in its grace period leaves its entry when the grace ends; an expired
key is refused by the authenticator, which checks ``expires_at`` on every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from glmserve.errors import Unavailable
from glmserve.store.key_records import ActiveKey
from glmserve.store.keys import KeyStore

log = logging.getLogger("glmserve.accounting.key_cache")
POLL_S = 0.25
TRUST_S = 1.0
SIZE = 10_000


class KeyCache:
    def __init__(
        self,
        keys: KeyStore,
        *,
        poll_s: float = POLL_S,
        trust_s: float = TRUST_S,
        size: int = SIZE,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._poll_s = poll_s
        self._trust_s = trust_s
        self._size = size
        self._clock = clock
        self._wall = wall
        self._entries: OrderedDict[str, ActiveKey] = OrderedDict()
        self._epoch: int | None = None
        self._checked_at = -math.inf  # when the last poll that answered started
        self._drops = 0  # counts clears, so that a lookup begun before one stores nothing
        self._task: asyncio.Task[None] | None = None
        keys.on_change(self.clear)

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll_loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def current(self) -> bool:
        return self._clock() - self._checked_at < self._trust_s

    def clear(self) -> None:
        self._entries.clear()
        self._drops += 1

    def get(self, key_id: str) -> ActiveKey | None:
        """The cached key, if the cache is current and holds it."""
        if not self.current:
            return None
        key = self._entries.get(key_id)
        grace_over = key is not None and (key.record.prev_valid_until or 0) <= self._wall()
        if key is not None and key.previous is not None and grace_over:
            key = dataclasses.replace(key, previous=None)
            self._entries[key_id] = key
        return key

    def remembered(self, key_id: str, within_s: float) -> ActiveKey | None:
        """The cached key if the last poll that answered is under ``within_s`` old (stale if error)."""
        if self._clock() - self._checked_at >= within_s:
            return None
        return self._entries.get(key_id)

    async def fetch(self, key_id: str) -> ActiveKey | None:
        """The key from the database, remembered unless the cache was dropped meanwhile."""
        drops = self._drops
        key = await self._keys.get_active(key_id)
        if key is None:
            self._entries.pop(key_id, None)
        elif drops == self._drops and self.current:
            self._entries[key_id] = key
            self._entries.move_to_end(key_id)
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return key

    async def poll(self) -> None:
        """Read the epoch; drop everything if it moved. Raises if the database does not answer."""
        started = self._clock()
        epoch = await self._keys.epoch()
        if epoch != self._epoch:
            self.clear()
            self._epoch = epoch
        self._checked_at = started

    async def _poll_loop(self) -> None:
        while True:
            try:
                await self.poll()
            except (Unavailable, SQLAlchemyError, OSError) as exc:
                log.debug("key epoch poll failed: %s", type(exc).__name__)
            await asyncio.sleep(self._poll_s)
