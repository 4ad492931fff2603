"""The job table's lease: one claimer wins, an expired lease is claimed again, one result per job."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from glmserve.store.batches import BatchStore
from glmserve.store.db import open_store
from glmserve.store.jobs import Job, JobStore


def job(n: int) -> Job:
    now = time.time()
    return Job(
        id=f"b:{n}", key_id="k", kind="batch", model="m", request={"n": n}, created_at=now,
        expires_at=now + 60, batch_id="b", line_no=n, custom_id=f"c{n}",
    )  # fmt: skip


def test_lease_claim_finish(tmp_path: Path) -> None:
    async def main() -> None:
        store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
        jobs = JobStore(store)
        try:
            await jobs.insert([job(0), job(1)])
            t0 = time.time()
            claims = (jobs.claim(("batch",), 5, now=t0) for _ in range(3))
            first, second, third = await asyncio.gather(*claims)
            claimed = [j.id for j in (first, second, third) if j is not None]
            assert sorted(claimed) == ["b:0", "b:1"]  # two jobs, two winners, one empty-handed
            assert await jobs.claim(("batch",), 5, now=t0 + 1) is None  # both leases are held
            assert await jobs.claim(("async",), 5, now=t0 + 1) is None  # another kind sees nothing

            # 10 s later both leases have expired: their workers "died"
            again = await jobs.claim(("batch",), 30, now=t0 + 10)
            assert again is not None and again.attempts == 2
            assert await jobs.finish(again.id, "succeeded", {"status_code": 200, "body": {}})
            assert not await jobs.finish(again.id, "failed", {"status_code": 500, "body": {}})
            assert (await jobs.counts("b")) == {"succeeded": 1, "running": 1}
            assert await jobs.cancel_batch("b") == 0  # the other one is running, not queued
            assert (await jobs.get(again.id, "k")) is not None and (await jobs.get(again.id, "other")) is None
            assert not await jobs.charged(again.id)
            other = await jobs.claim(("batch",), 30, now=t0 + 10)  # the second one's lease too
            assert other is not None and other.id != again.id
            await jobs.release([other.id, again.id])  # shutdown: only the running one goes back
            assert (await jobs.counts("b")) == {"succeeded": 1, "queued": 1}
        finally:
            await store.close()

    asyncio.run(main())


def test_any_open_is_false_only_with_nothing_to_do(db_url: str) -> None:
    """The worker's idle check: a queued or running job, or a batch not yet finished, is work."""

    async def main() -> list[bool]:
        store = await open_store(db_url)
        jobs, batches = JobStore(store), BatchStore(store)
        seen = []
        try:
            seen.append(await jobs.any_open())
            await jobs.insert([job(0)])
            seen.append(await jobs.any_open())
            claimed = await jobs.claim(("batch",), 30)
            assert claimed is not None
            seen.append(await jobs.any_open())  # running
            await jobs.finish(claimed.id, "succeeded", {"status_code": 200, "body": {}})
            seen.append(await jobs.any_open())
            body = {"id": "b", "status": "in_progress", "created_at": time.time()}
            await batches.insert("k", body)
            seen.append(await jobs.any_open())  # its lines are done, the batch is still to finish
            await batches.update({**body, "status": "completed"}, only_from=("in_progress",))
            seen.append(await jobs.any_open())
            return seen
        finally:
            await store.close()

    assert asyncio.run(main()) == [False, True, True, False, True, False]
