"""The job worker's batch lines: spare capacity first, and a batch cancelled meanwhile runs no more."""

from __future__ import annotations

import asyncio
import time
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
