"""The job worker's batch lines: spare capacity first, and a batch cancelled meanwhile runs no more."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glmserve.config.jobs import JobSettings
from glmserve.jobs.worker import JobWorker
from glmserve.store.db import open_store
from glmserve.store.jobs import Job, JobStore

CHAT = "/v1/chat/completions"


class Runner:
    def __init__(self) -> None:
        self.ran: list[str] = []

    async def run(self, job: Job, endpoint: str, *, charged: bool) -> tuple[int, dict[str, Any]]:
        self.ran.append(job.id)
        return 200, {"choices": []}


async def nothing() -> None:
    """No batches to finalize here."""


def line(n: int) -> Job:
    now = time.time()
    return Job(
        id=f"b:{n}", key_id="k", kind="batch", model="m", request={}, created_at=now,
        expires_at=now + 60, batch_id="b", line_no=n, custom_id=f"c{n}",
    )  # fmt: skip


def test_a_line_waiting_for_capacity_is_dropped_when_its_batch_is_cancelled(tmp_path: Path) -> None:
    """Cancel drops the lines not yet started, including one claimed and waiting for a free slot."""

    async def main() -> None:
        store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
        jobs, runner, batch = JobStore(store), Runner(), {"status": "in_progress"}
        waited = asyncio.Event()

        async def endpoint_of(job: Job) -> str | None:
            return CHAT if batch["status"] == "in_progress" else None

        def spare(job: Job) -> bool:  # busy until the batch is cancelled
            waited.set()
            return batch["status"] != "in_progress"

        worker = JobWorker(
            jobs, runner, JobSettings(poll_s=0.05), endpoint_of=endpoint_of, idle=nothing, spare=spare
        )  # type: ignore[arg-type]
        await jobs.insert([line(0)])
        worker.start()
        try:
            await asyncio.wait_for(waited.wait(), 10)  # claimed, waiting for a free slot
            batch["status"] = "cancelling"
            for _ in range(200):
                if (await jobs.counts("b")).get("running") is None:
                    break
                await asyncio.sleep(0.02)
            assert (await jobs.counts("b")) == {"cancelled": 1}
            assert runner.ran == []
        finally:
            await worker.close()
            await store.close()

    asyncio.run(main())


def started_after(db: Path, spare: Callable[[float], bool]) -> float:
    """Seconds from the worker's start to the one line's run; ``spare`` gets the seconds since."""

    async def main() -> float:
        store = await open_store(f"sqlite+aiosqlite:///{db}")
        jobs, runner = JobStore(store), Runner()
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def endpoint_of(job: Job) -> str | None:
            return CHAT

        worker = JobWorker(
            jobs, runner, JobSettings(poll_s=0.05), endpoint_of=endpoint_of, idle=nothing,
            spare=lambda job: spare(loop.time() - start),
        )  # type: ignore[arg-type]  # fmt: skip
        await jobs.insert([line(0)])
        worker.start()
        try:
            for _ in range(300):
                if runner.ran:
                    break
                await asyncio.sleep(0.01)
            ran_at = loop.time() - start
        finally:
            await worker.close()
            await store.close()
        assert runner.ran == ["b:0"]
        return ran_at

    return asyncio.run(main())


def test_a_line_that_waited_for_room_starts_only_if_there_is_still_room_a_moment_later(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A request ending makes room; its client's next one, right behind it, takes the room
    back. The line checks again ``FOLLOW_UP_S`` later and starts only when the room stayed."""
    monkeypatch.setattr("glmserve.jobs.worker.FOLLOW_UP_S", 0.3)
    # busy, then a gap between two requests of one client, busy again, then idle for good
    timeline = [(0.0, False), (0.2, True), (0.25, False), (0.6, True)]

    ran_at = started_after(tmp_path / "jobs.db", lambda now: [free for at, free in timeline if at <= now][-1])
    assert ran_at >= 0.6, f"the line started at {ran_at:.2f}s, in the gap between two requests"
    assert ran_at < 1.5, f"the line waited until {ran_at:.2f}s"


def test_a_line_with_room_at_once_starts_at_once(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr("glmserve.jobs.worker.FOLLOW_UP_S", 5.0)
    assert started_after(tmp_path / "jobs.db", lambda now: True) < 2.0, (
        "a line with room waited for a follow-up"
    )
