"""The usage writer: one task commits usage rows in batches (group commit).

A finished request hands its row to ``submit`` and awaits the returned future, which resolves
once the row is committed (or fails with ``Unavailable``). Rows that arrive while a batch is
being written go into the next one, so 50 requests finishing together cost a few transactions,
not 50, and SQLite sees a single writer. The task also prunes old rows and dead budget holds.

A batch that fails because the database is unreachable (restarting, a dropped connection, a
lock) is written again with backoff for up to ``WRITE_RETRY_S``: the requests waiting for their
rows wait that long, and then succeed, rather than losing their rows to a database restart. If
a commit went through but its acknowledgement was lost, the retry meets its own primary keys and
counts the batch as written (rows carry random ids, so that conflict means exactly this).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from glmserve.errors import Unavailable
from glmserve.metrics import Metrics
from glmserve.store.budget import BudgetLedger
from glmserve.store.db import unreachable
from glmserve.store.usage import UsageRow, UsageStore

log = logging.getLogger("glmserve.usage")
MAX_BATCH = 256
PRUNE_EVERY_S = 3600.0
WRITE_RETRY_S = 15.0
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 1.0

_Pending = tuple[UsageRow, asyncio.Future[None]]


class UsageRecorder:
    def __init__(
        self, usage: UsageStore, ledger: BudgetLedger, metrics: Metrics, retention_days: int
    ) -> None:
        self.usage = usage
        self._ledger = ledger
        self._metrics = metrics
        self._retention_days = retention_days
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Future[Any]] = set()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._write_loop()), asyncio.create_task(self._prune_loop())]

    def submit(self, row: UsageRow) -> asyncio.Future[None]:
        """Queue ``row``; the future resolves when it is committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieve)  # a row nobody waits for may fail quietly (it is logged)
        self._queue.put_nowait((row, done))
        return done

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background; ``close`` waits for it."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Finish background work, commit what is queued, stop."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write_retrying(self, rows: list[UsageRow]) -> None:
        pause, deadline = RETRY_FIRST_S, time.monotonic() + WRITE_RETRY_S
        retried = False
        while True:
            try:
                await self.usage.write(rows)
                return
            except IntegrityError:
                if not retried:
                    raise
                log.info("usage batch of %d rows was committed before the connection failed", len(rows))
                return
            except (DBAPIError, OSError) as exc:
                if time.monotonic() + pause > deadline or not unreachable(exc):
                    raise
                log.warning("usage write failed (%s); retrying in %.2fs", type(exc).__name__, pause)
                await asyncio.sleep(pause)
                pause, retried = min(pause * 2, RETRY_MAX_S), True

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            await self._write_retrying([row for row, _ in batch])
        except Exception as exc:  # the loop must outlive any failure, or every request would hang
            self._metrics.usage_write_errors.inc()
            # Only the type: a database error's text would carry the rows' parameters.
            log.error("could not record %d usage rows: %s", len(batch), type(exc).__name__)
            for _, done in batch:
                if not done.done():
                    done.set_exception(Unavailable("usage could not be recorded", retry_after=1))
            return
        for _, done in batch:
            if not done.done():
                done.set_result(None)

    async def _prune_loop(self) -> None:
        while True:
            with contextlib.suppress(SQLAlchemyError, OSError):
                await self._ledger.prune()
                if self._retention_days > 0:
                    removed = await self.usage.prune(self._retention_days)
                    if removed:
                        log.info("retention: removed %d usage rows", removed)
            await asyncio.sleep(PRUNE_EVERY_S)


def _retrieve(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()
