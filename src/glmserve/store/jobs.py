"""Durable jobs (``jobs``, migration ``m008_jobs``): async chat tasks and batch lines.

A job is ``queued``, then ``running`` under a lease, then ``succeeded``, ``failed`` or
``cancelled``. ``claim`` takes one job whose status is ``queued``, or ``running`` with an
expired lease (its worker died), in one conditional ``UPDATE``: of two workers racing for the
same row exactly one sees ``rowcount == 1``. ``finish`` writes the result only while the job is
still ``running`` — the first result recorded is the only one, so a line ends in exactly one
output record even when a lease expired under a slow worker. ``charged`` says whether an
earlier attempt already committed its usage row (usage rows carry the job id as request id),
so a job resumed after a crash is not charged twice. Reads are scoped to the owning key.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from glmserve.store.db import Store

DONE = ("succeeded", "failed", "cancelled")
_COLUMNS = (
    "id, key_id, kind, batch_id, line_no, custom_id, created_at, expires_at, status, model,"
    " request, result, lease_until, attempts"
)
_CANDIDATE = """
SELECT id FROM jobs
WHERE (status = 'queued' OR (status = 'running' AND lease_until < :now)) AND kind IN ({kinds})
ORDER BY created_at, line_no LIMIT 8
"""
_ANY_OPEN = """
SELECT EXISTS (SELECT 1 FROM jobs WHERE status IN ('queued', 'running'))
    OR EXISTS (SELECT 1 FROM batches WHERE status IN ('in_progress', 'cancelling'))
"""
_CLAIM = """
UPDATE jobs SET status = 'running', lease_until = :until, attempts = attempts + 1
WHERE id = :id AND (status = 'queued' OR (status = 'running' AND lease_until < :now))
"""


@dataclass(slots=True)
class Job:
    id: str
    key_id: str
    kind: str  # "async" (an async chat task) or "batch" (a batch line)
    model: str
    request: dict[str, Any]
    created_at: float
    expires_at: float
    status: str = "queued"
    batch_id: str | None = None
    line_no: int | None = None
    custom_id: str | None = None
    result: dict[str, Any] | None = None
    lease_until: float = 0.0
    attempts: int = 0

    def params(self) -> dict[str, Any]:
        return {
            "id": self.id, "key_id": self.key_id, "kind": self.kind, "batch_id": self.batch_id,
            "line_no": self.line_no, "custom_id": self.custom_id, "created_at": self.created_at,
            "expires_at": self.expires_at, "status": self.status, "model": self.model,
            "request": _dumps(self.request), "result": None if self.result is None else _dumps(self.result),
            "lease_until": self.lease_until, "attempts": self.attempts,
        }  # fmt: skip


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _job(row: Any) -> Job:
    return Job(
        id=row.id, key_id=row.key_id, kind=row.kind, model=row.model,
        request=orjson.loads(row.request), created_at=float(row.created_at),
        expires_at=float(row.expires_at), status=row.status, batch_id=row.batch_id,
        line_no=row.line_no, custom_id=row.custom_id,
        result=None if row.result is None else orjson.loads(row.result),
        lease_until=float(row.lease_until), attempts=int(row.attempts),
    )  # fmt: skip


async def insert_jobs(conn: AsyncConnection, jobs: Sequence[Job]) -> None:
    """Insert ``jobs`` in the caller's transaction (a batch commits its lines with itself)."""
    names = ", ".join(":" + name.strip() for name in _COLUMNS.split(","))
    sql = f"INSERT INTO jobs ({_COLUMNS}) VALUES ({names})"
    await conn.execute(text(sql), [job.params() for job in jobs])


class JobStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def insert(self, jobs: Sequence[Job]) -> None:
        async with self._store.write() as conn:
            await insert_jobs(conn, jobs)

    async def any_open(self) -> bool:
        """Whether a worker has anything to look at: a queued or running job (a lease may run
        out), or a batch still to finish. One indexed read; inline on a SQLite file."""
        return bool(await self._store.scalar(_ANY_OPEN))

    async def claim(self, kinds: Sequence[str], lease_s: float, *, now: float | None = None) -> Job | None:
        """One job for this worker, under a lease of ``lease_s``; ``None`` when there is none."""
        now = time.time() if now is None else now
        allowed = ", ".join(f"'{kind}'" for kind in kinds)
        async with self._store.engine.connect() as conn:
            ids = (await conn.execute(text(_CANDIDATE.format(kinds=allowed)), {"now": now})).scalars().all()
        for job_id in ids:
            async with self._store.write() as conn:
                params = {"id": job_id, "now": now, "until": now + lease_s}
                if (await conn.execute(text(_CLAIM), params)).rowcount != 1:
                    continue  # another worker took it first
                select = text(f"SELECT {_COLUMNS} FROM jobs WHERE id = :id")
                row = (await conn.execute(select, params)).first()
            return _job(row)
        return None

    async def renew(self, job_id: str, lease_s: float) -> None:
        sql = "UPDATE jobs SET lease_until = :until WHERE id = :id AND status = 'running'"
        async with self._store.write() as conn:
            await conn.execute(text(sql), {"id": job_id, "until": time.time() + lease_s})

    async def release(self, job_ids: Sequence[str]) -> None:
        """Give claimed jobs back at shutdown, so a restart need not wait out their leases."""
        sql = "UPDATE jobs SET status = 'queued', lease_until = 0 WHERE id = :id AND status = 'running'"
        async with self._store.write() as conn:
            for job_id in job_ids:
                await conn.execute(text(sql), {"id": job_id})

    async def finish(self, job_id: str, status: str, result: dict[str, Any]) -> bool:
        """Record the job's one result; ``False`` if it was already finished or cancelled."""
        sql = "UPDATE jobs SET status = :status, result = :result WHERE id = :id AND status = 'running'"
        async with self._store.write() as conn:
            done = await conn.execute(text(sql), {"id": job_id, "status": status, "result": _dumps(result)})
            return bool(done.rowcount)

    async def charged(self, job_id: str) -> bool:
        sql = "SELECT 1 FROM usage_events WHERE request_id = :id AND status = 200 LIMIT 1"
        async with self._store.engine.connect() as conn:
            return (await conn.execute(text(sql), {"id": job_id})).first() is not None

    async def get(self, job_id: str, key_id: str) -> Job | None:
        sql = f"SELECT {_COLUMNS} FROM jobs WHERE id = :id AND key_id = :key_id AND expires_at > :now"
        async with self._store.engine.connect() as conn:
            params = {"id": job_id, "key_id": key_id, "now": time.time()}
            row = (await conn.execute(text(sql), params)).first()
        return None if row is None else _job(row)

    async def batch_lines(self, batch_id: str) -> list[Job]:
        sql = f"SELECT {_COLUMNS} FROM jobs WHERE batch_id = :batch ORDER BY line_no"
        async with self._store.engine.connect() as conn:
            return [_job(row) for row in await conn.execute(text(sql), {"batch": batch_id})]

    async def counts(self, batch_id: str) -> dict[str, int]:
        sql = "SELECT status, COUNT(*) AS n FROM jobs WHERE batch_id = :batch GROUP BY status"
        async with self._store.engine.connect() as conn:
            return {row.status: int(row.n) for row in await conn.execute(text(sql), {"batch": batch_id})}

    async def cancel_batch(self, batch_id: str) -> int:
        """Lines not yet started are cancelled; a running one finishes (its result is kept)."""
        sql = "UPDATE jobs SET status = 'cancelled' WHERE batch_id = :batch AND status = 'queued'"
        async with self._store.write() as conn:
            return int((await conn.execute(text(sql), {"batch": batch_id})).rowcount or 0)

    async def prune(self) -> int:
        sql = "DELETE FROM jobs WHERE expires_at < :now AND status IN ('succeeded', 'failed', 'cancelled')"
        async with self._store.write() as conn:
            return int((await conn.execute(text(sql), {"now": time.time()})).rowcount or 0)
