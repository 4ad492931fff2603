"""Each request's accounting, whatever its protocol: admission (``Limits``), its usage row, metrics.

``Metering.admit`` runs before any engine work, on a front-end's ``Plan``, and returns a ``Meter``.
The meter watches the request's event stream (``Meter.watch`` wraps the engine's events): the first
event is the time to first token, the ``Usage`` event gives the tokens. When the events end, the
meter commits the request's usage row (settling its budget hold) and gives back its limiter lease
*before* the caller sends the last bytes (``[DONE]``, or the JSON body), so a completed response
always has its row, and a client that sends its next request at once finds its slot free. A request
that fails records its error (500 for an internal one); one whose client left records 499 in the
background.

A request cut before its ``Usage`` (the client left, streamed or not; an upstream broke off) is
charged what it produced so far, prompt included: the engine's last ``Progress`` (the embedded
engine's own count, a vLLM upstream's continuous usage), else an estimate from the prompt and
the text streamed (``estimates``), and then its row says ``usage_estimated``. Its TPM lease and
budget hold settle with that figure, like any row's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from glmserve.accounting.auth import Principal
from glmserve.accounting.estimates import estimate_usage
from glmserve.accounting.limits import Limits, Ticket
from glmserve.accounting.usage_recorder import UsageRecorder
from glmserve.engines.base import CompletionText, Event, Progress, Reasoning, Text, ToolCall, Usage
from glmserve.errors import GlmError
from glmserve.ids import hex_id
from glmserve.metrics import Metrics
from glmserve.store.usage import UsageRow

if TYPE_CHECKING:
    from glmserve.serving.model_router import ModelRouter
    from glmserve.serving.plan import AnyPlan

log = logging.getLogger("glmserve.accounting.metering")
CLIENT_GONE = 499
# Whether this request (this task's context) reached admission; one refused before it, by a
# front-end's checks, still gets its usage row (``Metering.refused``) without touching a limit.
ADMITTED: ContextVar[bool] = ContextVar("glmserve_admitted", default=False)
INTERNAL_ERROR = 500
_MODEL_CHARS = 128


@dataclass(frozen=True, slots=True)
class Refusal:
    key_id: str
    model: str
    request_id: str
    protocol: str
    status: int
    code: str


class Metering:
    def __init__(
        self,
        limits: Limits,
        recorder: UsageRecorder,
        metrics: Metrics,
        router: ModelRouter,
        *,
        store_content: bool = False,
        charge_cache_hits: bool = False,
    ) -> None:
        self.limits = limits
        self.recorder = recorder
        self.metrics = metrics
        self._router = router
        self._store_content = store_content
        self.charge_cache_hits = charge_cache_hits

    async def admit(self, principal: Principal, plan: AnyPlan) -> Meter:
        """Check the key's limits for ``plan``; raise the client's error or return its meter."""
        ADMITTED.set(True)
        meter = Meter(self, principal, plan)
        try:
            meter.ticket = await self.limits.admit(principal, plan.model, plan.tokens_at_most())
        except GlmError as exc:
            meter.finish_later(exc.status, exc.code, admitted=False)
            raise
        self.metrics.in_flight.inc()
        return meter

    async def refused(self, refusal: Refusal) -> None:
        """The usage row of a request a front-end refused before admission (no limit touched)."""
        now = time.time()
        row = UsageRow(
            id=hex_id(16), created_at=now, key_id=refusal.key_id,
            model=refusal.model[:_MODEL_CHARS], deployment=None, request_id=refusal.request_id,
            stream=False, status=refusal.status, error_code=refusal.code, protocol=refusal.protocol,
            charged=False,
        )  # fmt: skip
        self.observe(row, admitted=False)
        try:
            await self.recorder.submit(row)
        except GlmError:
            log.warning("usage row of refused request %s not recorded", row.request_id)

    def observe(self, row: UsageRow, *, admitted: bool) -> None:
        model = row.model if row.model in self._router.names else "-"
        m = self.metrics
        m.requests.inc((model, str(row.status), row.error_code or "-"))
        if admitted:
            m.in_flight.dec()
            m.latency.observe((model,), row.latency_ms / 1000)
        if row.ttft_ms is not None:
            m.ttft.observe((model,), row.ttft_ms / 1000)
        for kind, count in (
            ("prompt", row.prompt_tokens), ("completion", row.completion_tokens),
            ("reasoning", row.reasoning_tokens), ("cached", row.cached_tokens),
        ):  # fmt: skip
            if count:
                m.tokens.inc((model, kind), count)

    @property
    def keeps_content(self) -> bool:
        return self._store_content


class Meter:
    def __init__(self, owner: Metering, principal: Principal, plan: AnyPlan) -> None:
        self._owner = owner
        self._principal = principal
        self._plan = plan
        self._request_id = plan.request_id
        self.deployment: str | None = plan.route.engine.name
        self.ticket = Ticket()
        self._created_at = time.time()
        self._started = time.monotonic()
        self._first_at: float | None = None
        self._usage: Usage | None = None
        self._progress: Progress | None = None
        self._said: list[str] = []  # what the engine wrote, while it has given no count
        self._text: list[str] = []  # the answer, kept as content
        self._finished = False
        self._cache_hit = False

    async def watch(self, events: AsyncIterator[Event], cache: str | None = None) -> AsyncIterator[Event]:
        """``events``, unchanged; the row is committed after the last one, before the caller ends.

        ``cache`` is the response cache's verdict (``HIT``, ``MISS`` or None): a hit is recorded
        as one, and its tokens are not charged unless ``cache.charge_hits`` says so.
        """
        self._cache_hit = cache == "HIT"
        try:
            async for ev in events:
                self._see(ev)
                yield ev
        except GlmError as exc:
            await self.finish(exc.status, exc.code, strict=False)
            raise
        except Exception:
            await self.finish(INTERNAL_ERROR, "500", strict=False)
            raise
        except BaseException:  # the client left (GeneratorExit) or the task was cancelled
            self.finish_later(CLIENT_GONE, None)
            raise
        finally:
            await events.aclose()  # type: ignore[attr-defined]
        await self.finish(200, None)

    async def finish(self, status: int, code: str | None, *, strict: bool = True) -> None:
        """Record the request and give back its lease; ``strict``: raise if the row is lost."""
        ended = self._claim()
        if ended is None:
            return
        record = self._record(ended, status, code, admitted=True, strict=strict)
        if self._estimated:  # counting awaits: the caller's cancellation must not lose the row
            await asyncio.shield(asyncio.ensure_future(record))
        else:
            await record

    def finish_later(self, status: int, code: str | None, *, admitted: bool = True) -> None:
        ended = self._claim()
        if ended is not None:
            self._owner.recorder.spawn(self._record(ended, status, code, admitted=admitted, strict=False))

    def _see(self, ev: Event) -> None:
        if self._first_at is None:
            self._first_at = time.monotonic()
        counted = self._usage is not None or self._progress is not None
        match ev:
            case Usage():
                self._usage = ev
            case Progress():
                self._progress = ev
            case Text(delta):
                if not counted:
                    self._said.append(delta)
                if self._owner.keeps_content:
                    self._text.append(delta)
            case Reasoning(delta) | CompletionText(text=delta) if not counted:
                self._said.append(delta)
            case ToolCall(name=name, arguments_delta=args) if not counted:
                self._said.append(f"{name or ''}{args}")

    def _claim(self) -> float | None:
        """When the request ended, the first time it is claimed; None after that."""
        if self._finished:
            return None
        self._finished = True
        return time.monotonic()

    @property
    def _estimated(self) -> bool:
        """The engine produced something but no count of it: the row's tokens are estimated."""
        return self._usage is None and self._progress is None and self._first_at is not None

    def _counted(self) -> Usage | None:
        if self._usage is not None or self._progress is None:
            return self._usage
        p = self._progress
        return Usage(p.prompt_tokens, p.completion_tokens, p.cached_tokens, p.reasoning_tokens)

    async def _record(
        self, ended: float, status: int, code: str | None, *, admitted: bool, strict: bool
    ) -> None:
        estimated = self._estimated
        usage = await estimate_usage(self._plan, "".join(self._said)) if estimated else self._counted()
        row = self._row(status, code, ended, usage, estimated)
        self._owner.observe(row, admitted=admitted)
        await self._commit(row, strict)

    async def _commit(self, row: UsageRow, strict: bool) -> None:
        written = self._owner.recorder.submit(row)
        released = asyncio.ensure_future(self._release(row))
        try:
            await asyncio.shield(released)
            await asyncio.shield(written)
        except GlmError:
            if strict:
                raise
            log.warning("usage row of request %s not recorded", self._request_id)

    async def _release(self, row: UsageRow) -> None:
        try:
            await self._owner.limits.release(self.ticket, row.charged_tokens)
        except GlmError as exc:  # the lease expires on its own
            log.warning("could not release a rate-limit lease: %s", exc.message)

    def _served_by(self) -> str | None:
        """The deployment that answered (a chain names it in ``Usage``); a cache hit has none."""
        usage = self._usage
        if usage is not None and usage.served_by and not self._cache_hit:
            return usage.served_by
        return self.deployment

    def _row(
        self, status: int, code: str | None, ended: float, usage: Usage | None, estimated: bool
    ) -> UsageRow:
        keep = self._owner.keeps_content
        return UsageRow(
            id=hex_id(16),
            created_at=self._created_at,
            key_id=self._principal.key_id,
            model=self._plan.model[:_MODEL_CHARS],
            deployment=self._served_by(),
            request_id=self._request_id,
            stream=self._plan.stream,
            protocol=self._plan.protocol,
            status=status,
            error_code=code,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            reasoning_tokens=usage.reasoning_tokens if usage else 0,
            cached_tokens=usage.cached_tokens if usage else 0,
            latency_ms=round((ended - self._started) * 1000, 3),
            ttft_ms=None if self._first_at is None else round((self._first_at - self._started) * 1000, 3),
            cache_hit=self._cache_hit,
            charged=self._owner.charge_cache_hits or not self._cache_hit,
            usage_estimated=estimated,
            prompt=self._plan.content() if keep and self._plan.content else None,
            output="".join(self._text) if keep else None,
            hold=self.ticket.hold,
        )
