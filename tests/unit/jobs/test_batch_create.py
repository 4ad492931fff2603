"""A batch and its lines become visible together, so no worker sees one without the other.

A worker polling while ``Batches.create`` runs must never find a line whose batch row is missing
(it would cancel the line: its batch looks gone) nor an active batch without its lines (finalize
would complete it with no records). The check runs after every committed write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from glmserve.jobs.batches import Batches
from glmserve.jobs.files import Files
from glmserve.store.batches import BatchStore
from glmserve.store.db import Store, open_store
from glmserve.store.files import FileStore
from glmserve.store.jobs import JobStore

CHAT = "/v1/chat/completions"
ORPHAN_LINES = """
SELECT COUNT(*) FROM jobs WHERE batch_id IS NOT NULL
AND NOT EXISTS (SELECT 1 FROM batches WHERE batches.id = jobs.batch_id)
"""
EMPTY_BATCHES = """
SELECT COUNT(*) FROM batches WHERE status = 'in_progress'
AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.batch_id = batches.id)
"""


class Checked(Store):
    """After each write commits: what a worker polling at that moment would see."""

    def __init__(self, store: Store) -> None:
        super().__init__(store.engine)
        self.seen: list[tuple[int, int]] = []

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with super().write() as conn:
            yield conn
        async with self.engine.connect() as conn:
            orphans = (await conn.execute(text(ORPHAN_LINES))).scalar_one()
            empty = (await conn.execute(text(EMPTY_BATCHES))).scalar_one()
        self.seen.append((orphans, empty))


class Runner:
    async def plan(self, endpoint: str, body: Any, request_id: str, protocol: str) -> object:
        return object()  # every line is good


def test_a_batch_and_its_lines_are_committed_together(tmp_path: Path) -> None:
    async def main() -> None:
        store = Checked(await open_store(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}"))
        jobs = JobStore(store)
        files = Files(FileStore(store), tmp_path / "files", 1 << 20)
        batches = Batches(BatchStore(store), jobs, files, Runner(), 100)  # type: ignore[arg-type]
        try:
            line = {"url": CHAT, "body": {"model": "m"}}
            data = b"".join(json.dumps(line | {"custom_id": f"c{n}"}).encode() + b"\n" for n in range(3))
            upload = await files.upload("k", "in.jsonl", "batch", data)
            store.seen.clear()
            batch = await batches.create("k", {"input_file_id": upload.id, "endpoint": CHAT})

            assert batch["status"] == "in_progress"
            assert (await jobs.counts(batch["id"])) == {"queued": 3}
            assert store.seen and all(seen == (0, 0) for seen in store.seen), store.seen
        finally:
            await store.close()

    asyncio.run(main())
