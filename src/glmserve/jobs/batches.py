"""Batches: a checked input file becomes one job row per line; finished lines become two files.

``create`` checks every line up front (``batch_input``); a file with a bad line makes a
``failed`` batch that lists the errors, and nothing runs. Otherwise the lines are queued as
jobs (id ``<batch id>:<line>``, the request id of the line's usage row, so usage rows are
tagged with their batch) and the batch is ``in_progress``. The worker runs them on spare
capacity. ``finalize`` — called by any worker when idle, idempotent — sees a batch whose
lines are all finished and writes its output file (successes) and error file (failures), one
record per line in OpenAI's JSONL shape keyed by ``custom_id``, then marks it ``completed``
(or ``cancelled``). The files' ids are fixed by the batch id, so a finalize interrupted by a
crash is simply done again. ``cancel`` drops the lines not yet started; a running line ends.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson

from glmserve.errors import InvalidField, NotFound
from glmserve.jobs.batch_input import Line, check_lines
from glmserve.jobs.endpoints import ENDPOINTS_SAID, canonical_endpoint
from glmserve.jobs.files import Files
from glmserve.jobs.runner import JobRunner
from glmserve.store.batches import ACTIVE, BatchStore
from glmserve.store.jobs import Job, JobStore

WINDOWS = ("24h",)
JOB_TTL_S = 30 * 86400.0
MAX_METADATA = 16


class Batches:
    def __init__(
        self, store: BatchStore, jobs: JobStore, files: Files, runner: JobRunner, max_lines: int
    ) -> None:
        self.store = store
        self._jobs = jobs
        self._files = files
        self._runner = runner
        self._max_lines = max_lines

    async def create(self, key_id: str, body: dict[str, Any]) -> dict[str, Any]:
        endpoint, window, file_id, metadata = _fields(body)
        data = await self._files.content(file_id, key_id)
        now = time.time()
        batch_id = f"batch_{secrets.token_hex(12)}"

        async def check(line_body: dict[str, Any]) -> object:
            return await self._runner.plan(endpoint, line_body, batch_id, "batch")

        lines, errors = await check_lines(data, endpoint, self._max_lines, check)
        batch = _new_batch(batch_id, endpoint, window, file_id, metadata, now)
        batch["request_counts"]["total"] = len(lines) + len(errors)
        if errors:
            batch.update(status="failed", failed_at=int(now), errors={"object": "list", "data": errors})
            await self.store.insert(key_id, batch)
            return batch
        jobs = [_line_job(batch_id, key_id, n, line, now) for n, line in enumerate(lines)]
        await self.store.insert(key_id, batch, jobs)  # together: no worker sees one without the other
        return batch

    async def get(self, batch_id: str, key_id: str) -> dict[str, Any]:
        found = await self.store.get(batch_id, key_id)
        if found is None:
            raise NotFound(f"batch '{batch_id}' not found", param="batch_id")
        batch = found[1]
        if batch["status"] in ACTIVE:
            batch["request_counts"] = _request_counts(await self._jobs.counts(batch_id))
        return batch

    async def list(self, key_id: str, limit: int, after: str | None) -> dict[str, Any]:
        data = await self.store.list(key_id, limit + 1, after)
        page = data[:limit]
        return {
            "object": "list", "data": page, "has_more": len(data) > limit,
            "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None,
        }  # fmt: skip

    async def cancel(self, batch_id: str, key_id: str) -> dict[str, Any]:
        batch = await self.get(batch_id, key_id)
        if batch["status"] != "in_progress":
            if batch["status"] == "cancelling":
                return batch
            raise InvalidField(f"batch '{batch_id}' is {batch['status']}; it cannot be cancelled")
        batch.update(status="cancelling", cancelling_at=int(time.time()))
        await self.store.update(batch, only_from=("in_progress",))
        await self._jobs.cancel_batch(batch_id)
        return await self.get(batch_id, key_id)

    async def endpoint_of(self, job: Job) -> str | None:
        """The endpoint of a line's batch while it runs; ``None``: cancelled or gone."""
        found = await self.store.get(job.batch_id or "")
        if found is None or found[1]["status"] != "in_progress":
            return None
        return str(found[1]["endpoint"])

    async def finalize(self) -> None:
        for key_id, batch in await self.store.active():
            counts = await self._jobs.counts(batch["id"])
            if counts.get("queued") or counts.get("running"):
                continue
            await self._finish(key_id, batch, counts)

    async def _finish(self, key_id: str, batch: dict[str, Any], counts: dict[str, int]) -> None:
        lines = await self._jobs.batch_lines(batch["id"])
        output = [_record(job) for job in lines if job.status == "succeeded"]
        errors = [_record(job) for job in lines if job.status == "failed"]
        now = int(time.time())
        if output:
            batch["output_file_id"] = await self._write(key_id, batch["id"], "output", output)
        if errors:
            batch["error_file_id"] = await self._write(key_id, batch["id"], "error", errors)
        batch["request_counts"] = _request_counts(counts)
        if batch["status"] == "cancelling":
            batch.update(status="cancelled", cancelled_at=now)
        else:
            batch.update(status="completed", finalizing_at=now, completed_at=now)
        await self.store.update(batch, only_from=ACTIVE)

    async def _write(self, key_id: str, batch_id: str, kind: str, records: list[dict[str, Any]]) -> str:
        file_id = f"file-{batch_id}-{kind}"
        data = b"".join(orjson.dumps(record) + b"\n" for record in records)
        await self._files.put(file_id, key_id, f"{batch_id}_{kind}.jsonl", "batch_output", data)
        return file_id


def _line_job(batch_id: str, key_id: str, n: int, line: Line, now: float) -> Job:
    return Job(
        id=f"{batch_id}:{n}", key_id=key_id, kind="batch", model=str(line.body.get("model", "")),
        request=line.body, created_at=now, expires_at=now + JOB_TTL_S, batch_id=batch_id,
        line_no=n, custom_id=line.custom_id,
    )  # fmt: skip


def _fields(body: dict[str, Any]) -> tuple[str, str, str, dict[str, Any] | None]:
    endpoint, window = body.get("endpoint"), body.get("completion_window") or "24h"  # zhipuai sends null
    file_id, metadata = body.get("input_file_id"), body.get("metadata")
    if canonical_endpoint(endpoint) is None:
        raise InvalidField(f"endpoint must be {ENDPOINTS_SAID}", param="endpoint")
    if window not in WINDOWS:
        raise InvalidField(
            f"completion_window must be one of {', '.join(WINDOWS)}", param="completion_window"
        )
    if not isinstance(file_id, str) or not file_id:
        raise InvalidField("input_file_id is required", param="input_file_id")
    if metadata is not None and (not isinstance(metadata, dict) or len(metadata) > MAX_METADATA):
        raise InvalidField(f"metadata must be an object of at most {MAX_METADATA} pairs", param="metadata")
    return str(endpoint), str(window), file_id, metadata


def _new_batch(
    batch_id: str, endpoint: str, window: str, file_id: str, metadata: dict[str, Any] | None, now: float
) -> dict[str, Any]:
    return {
        "id": batch_id, "object": "batch", "endpoint": endpoint, "errors": None,
        "input_file_id": file_id, "completion_window": window, "status": "in_progress",
        "output_file_id": None, "error_file_id": None, "created_at": int(now),
        "in_progress_at": int(now), "expires_at": int(now + 86400), "finalizing_at": None,
        "completed_at": None, "failed_at": None, "expired_at": None, "cancelling_at": None,
        "cancelled_at": None, "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": metadata,
    }  # fmt: skip


def _request_counts(counts: dict[str, int]) -> dict[str, int]:
    completed, failed = counts.get("succeeded", 0), counts.get("failed", 0)
    return {"total": sum(counts.values()), "completed": completed, "failed": failed}


def _record(job: Job) -> dict[str, Any]:
    result = job.result or {}
    status, body = int(result.get("status_code", 500)), result.get("body")
    error = None
    if status != 200:
        detail = (body or {}).get("error") or {}
        error = {"code": detail.get("code"), "message": detail.get("message")}
    return {
        "id": f"batch_req_{job.id.rsplit(':', 1)[-1]}_{job.batch_id}",
        "custom_id": job.custom_id,
        "response": {"status_code": status, "request_id": job.id, "body": body},
        "error": error,
    }
