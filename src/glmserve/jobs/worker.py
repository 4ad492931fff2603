"""The durable worker: claims job rows under a lease, runs them, records one result each.

Async chat tasks run as soon as they are claimed (a few at a time). Batch lines use spare
capacity only: one line at a time, and only while its engine has a free slot and nobody
waiting for one (``jobs.service.spare_capacity``), so interactive requests are never queued
behind a batch; a line that waited for that starts only if there is still room ``FOLLOW_UP_S``
later. A claimed job's lease is renewed while it runs; a worker that dies (``kill -9``) stops
renewing, and after ``lease_s`` any worker — this process restarted, or another replica —
claims the job again.
Between jobs the worker gives ``idle`` a turn (batch finalization, pruning).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from glmserve.config.jobs import JobSettings
from glmserve.jobs.endpoints import CHAT
from glmserve.jobs.runner import JobRunner
from glmserve.store.jobs import Job, JobStore

log = logging.getLogger("glmserve.jobs")
MAX_ASYNC = 4  # async chat tasks one worker runs at once
PRUNE_EVERY_S = 600.0
# A line that had to wait for interactive traffic waits this much longer once there is room: the
# room usually comes from a request that just ended, and its client (an agent loop, a chat, a
# benchmark) sends the next one at once. Started now, the line's prompt would be what that next
# request finds llama.cpp reading.
FOLLOW_UP_S = 0.25


class JobWorker:
    def __init__(
        self,
        jobs: JobStore,
        runner: JobRunner,
        settings: JobSettings,
        *,
        endpoint_of: Callable[[Job], Awaitable[str | None]],
        idle: Callable[[], Awaitable[None]],
        spare: Callable[[Job], bool],
    ) -> None:
        self._jobs = jobs
        self._runner = runner
        self._settings = settings
        self._endpoint_of = endpoint_of
        self._idle = idle
        self._spare = spare
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._batch_line: asyncio.Task[None] | None = None
        self._claimed: set[str] = set()
        self.wake = asyncio.Event()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        running = [t for t in (self._loop_task, self._batch_line, *self._tasks) if t is not None]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if self._claimed:  # stopped mid-job: queued again at once (a crash waits out the lease)
            with contextlib.suppress(SQLAlchemyError, OSError):
                await self._jobs.release(sorted(self._claimed))

    async def _loop(self) -> None:
        last_prune = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                busy = await self._step()
                if loop.time() - last_prune > PRUNE_EVERY_S:
                    last_prune = loop.time()
                    await self._jobs.prune()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("job worker: database unavailable: %s", type(exc).__name__)
                busy = False
            if not busy:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self._settings.poll_s)

    async def _step(self) -> bool:
        if not await self._jobs.any_open():  # the idle case: one read, not three
            return False
        busy = False
        if len(self._tasks) < MAX_ASYNC:
            job = await self._jobs.claim(("async",), self._settings.lease_s)
            if job is not None:
                self._spawn(self._run(job, CHAT))
                busy = True
        if self._batch_line is None or self._batch_line.done():
            self._batch_line = None
            job = await self._jobs.claim(("batch",), self._settings.lease_s)
            if job is not None:
                self._batch_line = asyncio.create_task(self._run_line(job))
                busy = True
            else:
                await self._idle()
        return busy

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_line(self, job: Job) -> None:
        async with self._leased(job):
            await self._room_for(job)
            endpoint = await self._endpoint_of(job)  # after the wait: a cancel meanwhile drops it
        if endpoint is None:  # its batch is gone or cancelled
            await self._jobs.finish(job.id, "cancelled", {"status_code": 499, "body": None})
            return
        await self._run(job, endpoint)

    async def _room_for(self, job: Job) -> None:
        """Until the line's engine has spare capacity (interactive traffic first), and after a
        wait for it, still spare ``FOLLOW_UP_S`` later."""
        waited = False
        while True:
            if self._spare(job):
                if not waited:
                    return
                waited = False
                await asyncio.sleep(FOLLOW_UP_S)
                continue
            waited = True
            await asyncio.sleep(self._settings.poll_s / 5)

    async def _run(self, job: Job, endpoint: str) -> None:
        try:
            async with self._leased(job):
                charged = job.attempts > 1 and await self._jobs.charged(job.id)
                status, body = await self._runner.run(job, endpoint, charged=charged)
            result: dict[str, Any] = {"status_code": status, "body": body}
            await self._jobs.finish(job.id, "succeeded" if status == 200 else "failed", result)
        except asyncio.CancelledError:
            raise  # shutdown: the lease runs out and the job is claimed again
        except Exception:
            log.exception("job %s failed", job.id)
            error = {"error": {"message": "internal error", "type": "api_error", "code": "500"}}
            with contextlib.suppress(SQLAlchemyError, OSError):
                await self._jobs.finish(job.id, "failed", {"status_code": 500, "body": error})
        self.wake.set()

    @contextlib.asynccontextmanager
    async def _leased(self, job: Job) -> Any:
        async def renew() -> None:
            while True:
                await asyncio.sleep(self._settings.lease_s / 3)
                with contextlib.suppress(SQLAlchemyError, OSError):
                    await self._jobs.renew(job.id, self._settings.lease_s)

        keeper = asyncio.create_task(renew())
        self._claimed.add(job.id)
        try:
            yield
        except asyncio.CancelledError:
            raise  # shutdown: stays claimed, and close() gives it back
        except BaseException:
            self._claimed.discard(job.id)
            raise
        else:
            self._claimed.discard(job.id)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
