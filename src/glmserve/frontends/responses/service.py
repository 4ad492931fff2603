"""The Responses API's state: stored responses, conversations, background jobs and retention.

``prepare`` turns a request into a checked ``Plan`` (every 400 before admission) plus what its
rendering and storage need; serving is the one pipeline's. Stored objects belong to the key that
made them. ``store: false`` keeps nothing. A ``background`` response is stored ``queued`` at
once and runs as an asyncio task through the same pipeline (``in_progress``, then its final
status); ``cancel`` stops the task and records ``cancelled``. At shutdown the tasks still
running are cancelled and recorded as such; a process killed outright leaves its jobs
``in_progress``. Finished responses older than ``usage.retention_days`` are deleted hourly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from glmserve.accounting.auth import Principal
from glmserve.errors import GlmError, InvalidField, NotFound
from glmserve.frontends.chat.plan import build_plan
from glmserve.frontends.responses.items import new_id, normalize
from glmserve.frontends.responses.protocol import CreateResponse
from glmserve.frontends.responses.render import (
    ResponsesRendering,
    envelope,
    error_body,
    never,
    response_object,
)
from glmserve.frontends.responses.translate import in_responses_terms, to_chat_request
from glmserve.images.inputs import ImageLoader
from glmserve.serving.model_router import ModelRouter
from glmserve.serving.pipeline import Pipeline
from glmserve.serving.plan import Plan
from glmserve.store.responses import ACTIVE, ResponseStore, StoredResponse

log = logging.getLogger("glmserve.responses")
PRUNE_EVERY_S = 3600.0
CONTINUABLE = ("completed", "incomplete")


@dataclass(slots=True)
class Prepared:
    """A checked request: its plan, its input items and the object's fixed fields."""

    req: CreateResponse
    plan: Plan
    items: list[dict[str, Any]]
    base: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.base["id"])


class ResponsesService:
    def __init__(
        self,
        store: ResponseStore,
        pipeline: Pipeline,
        router: ModelRouter,
        images: ImageLoader,
        retention_days: int,
    ) -> None:
        self.store = store
        self._pipeline = pipeline
        self._router = router
        self._images = images
        self._retention_days = retention_days
        self._jobs: dict[str, tuple[asyncio.Task[None], Prepared]] = {}
        self._background: set[asyncio.Future[Any]] = set()
        self._pruner: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._pruner = asyncio.create_task(self._prune_loop())

    async def close(self) -> None:
        jobs = list(self._jobs.values())
        for task, _ in jobs:
            task.cancel()
        await asyncio.gather(*(task for task, _ in jobs), *self._background, return_exceptions=True)
        for _, prepared in jobs:  # a job cancelled before it ever ran recorded nothing itself
            await self._settle(prepared.id, response_object(prepared.base, "cancelled"))
        if self._pruner is not None:
            self._pruner.cancel()
            await asyncio.gather(self._pruner, return_exceptions=True)

    def spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- preparing ---------------------------------------------------------------------------
    async def history(self, key_id: str, previous_id: str) -> list[dict[str, Any]]:
        """The conversation up to ``previous_id``: each response's input items, then its output."""
        chain = await self.store.chain(previous_id, key_id)
        if not chain:
            raise NotFound(f"previous response '{previous_id}' not found", param="previous_response_id")
        status = chain[-1][1]["status"]
        if status not in CONTINUABLE:
            raise InvalidField(
                f"previous response '{previous_id}' is {status}; only a completed or incomplete one "
                "can be continued",
                param="previous_response_id",
            )
        items: list[dict[str, Any]] = []
        for inputs, body in chain:
            items += inputs
            items += body["output"]
        return items

    async def prepare(self, req: CreateResponse, key_id: str, request_id: str) -> Prepared:
        items = normalize(req.input)
        history = await self.history(key_id, req.previous_response_id) if req.previous_response_id else []
        chat, where = to_chat_request(req, history, items)
        try:
            plan = await build_plan(chat, self._router, self._images, request_id, protocol="responses")
        except GlmError as exc:
            raise in_responses_terms(exc, where) from None
        return Prepared(req, plan, items, envelope(req, plan, new_id("resp")))

    def rendering(self, prepared: Prepared, key_id: str) -> ResponsesRendering:
        async def finish(final: dict[str, Any]) -> None:
            if not prepared.req.stores:
                return
            try:
                await self.store.insert(self._record(prepared, key_id, final))
            except SQLAlchemyError as exc:  # the client still gets its answer; only the copy is lost
                log.error("could not store response %s: %s", prepared.id, type(exc).__name__)

        summary = prepared.req.reasoning is not None and prepared.req.reasoning.summary_mode is not None
        return ResponsesRendering(prepared.base, summary, finish, self.spawn)

    @staticmethod
    def _record(prepared: Prepared, key_id: str, body: dict[str, Any]) -> StoredResponse:
        return StoredResponse(
            id=prepared.id,
            key_id=key_id,
            created_at=time.time(),
            status=body["status"],
            model=prepared.req.model,
            previous_response_id=prepared.req.previous_response_id,
            background=bool(prepared.req.background),
            input_items=prepared.items,
            body=body,
        )

    # -- background ----------------------------------------------------------------------------
    async def start_background(self, principal: Principal, prepared: Prepared) -> dict[str, Any]:
        queued = response_object(prepared.base, "queued")
        await self.store.insert(self._record(prepared, principal.key_id, queued))
        task = asyncio.create_task(self._run(principal, prepared))
        self._jobs[prepared.id] = (task, prepared)
        task.add_done_callback(lambda _: self._jobs.pop(prepared.id, None))
        return queued

    async def _run(self, principal: Principal, prepared: Prepared) -> None:
        response_id = prepared.id

        async def finish(final: dict[str, Any]) -> None:
            await self.store.update(response_id, final, only_from=("in_progress",))

        try:
            started = response_object(prepared.base, "in_progress")
            if not await self.store.update(response_id, started, only_from=("queued",)):
                return  # cancelled (on another replica) before it began
            rendering = ResponsesRendering(prepared.base, False, finish, self.spawn)
            await self._pipeline.serve(principal, prepared.plan, rendering, never)
        except asyncio.CancelledError:
            await self._settle(response_id, response_object(prepared.base, "cancelled"))
            raise
        except GlmError as exc:
            await self._settle(response_id, response_object(prepared.base, "failed", error=error_body(exc)))
        except Exception:
            log.exception("background response %s failed", response_id)
            failed = response_object(
                prepared.base, "failed", error={"code": "server_error", "message": "internal error"}
            )
            await self._settle(response_id, failed)

    async def _settle(self, response_id: str, body: dict[str, Any]) -> None:
        with contextlib.suppress(SQLAlchemyError, OSError):
            await asyncio.shield(self.store.update(response_id, body))

    async def cancel(self, response_id: str, key_id: str) -> dict[str, Any]:
        record = await self.store.get(response_id, key_id)
        if record is None:
            raise NotFound(f"response '{response_id}' not found", param="response_id")
        if not record.background:
            raise InvalidField("only a background response can be cancelled", param="response_id")
        if record.status not in ACTIVE:
            return record.body
        job = self._jobs.get(response_id)
        if job is not None:
            job[0].cancel()
            await asyncio.gather(job[0], return_exceptions=True)
        # Also for a job that never ran, or one on another replica, whose result is then dropped.
        await self.store.update(response_id, {**record.body, "status": "cancelled"})
        found = await self.store.get(response_id, key_id)
        return found.body if found is not None else {**record.body, "status": "cancelled"}

    # -- retention -----------------------------------------------------------------------------
    async def _prune_loop(self) -> None:
        while True:
            if self._retention_days > 0:
                with contextlib.suppress(SQLAlchemyError, OSError):
                    removed = await self.store.prune(self._retention_days)
                    if removed:
                        log.info("retention: removed %d stored responses", removed)
            await asyncio.sleep(PRUNE_EVERY_S)
