"""Zhipu async chat: ``POST /async/chat/completions`` queues a job; ``GET /async-result/{id}`` polls it.

The body is a chat completions body (``stream`` refused), checked in full before it is queued,
so a bad request is a 400 now rather than a ``FAIL`` later. The result belongs to the key that
submitted it (another key gets 404) and is kept for ``jobs.result_ttl_s``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from fastapi import APIRouter, Request, Response

from glmserve.errors import NotFound
from glmserve.http.body import read_json
from glmserve.http.responses import json_response
from glmserve.jobs.endpoints import CHAT
from glmserve.services import authenticate, services
from glmserve.store.jobs import Job

router = APIRouter()
_STATUS = {"succeeded": "SUCCESS", "failed": "FAIL", "cancelled": "FAIL"}


@router.post("/async/chat/completions")
async def submit(request: Request) -> Response:
    svc = services(request)
    jobs = svc.require_jobs()
    principal = await authenticate(request)
    body = await read_json(request, svc.settings.max_body_bytes)
    task_id = f"task-{secrets.token_hex(12)}"
    await jobs.runner.plan(CHAT, body, task_id, "async")  # every 400 now, before it is queued
    request_id = str(body.get("request_id") or task_id)
    now = time.time()
    job = Job(
        id=task_id, key_id=principal.key_id, kind="async", model=str(body["model"]),
        request=body, created_at=now, expires_at=now + svc.settings.jobs.result_ttl_s,
        custom_id=request_id,
    )  # fmt: skip
    await jobs.store.insert([job])
    jobs.worker.wake.set()
    request.state.model = job.model
    return json_response(_status_body(job, "PROCESSING"))


@router.get("/async-result/{task_id}")
async def result(request: Request, task_id: str) -> Response:
    svc = services(request)
    jobs = svc.require_jobs()
    principal = await authenticate(request)
    job = await jobs.store.get(task_id, principal.key_id)
    if job is None or job.kind != "async":
        raise NotFound(f"async task '{task_id}' not found", param="id")
    status = _STATUS.get(job.status, "PROCESSING")
    out = _status_body(job, status)
    answer: dict[str, Any] = (job.result or {}).get("body") or {}
    if status == "SUCCESS":
        out.update(created=answer.get("created"), choices=answer.get("choices"), usage=answer.get("usage"))
    elif status == "FAIL":
        out["error"] = answer.get("error") or {"message": "cancelled", "code": "499"}
    return json_response(out)


def _status_body(job: Job, status: str) -> dict[str, Any]:
    return {"id": job.id, "request_id": job.custom_id, "model": job.model, "task_status": status}
