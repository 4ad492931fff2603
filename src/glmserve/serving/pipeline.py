"""Serving, protocol-agnostic: admit → cache / single-flight → engine → parsers → meter → render.

Every front-end calls ``Pipeline.serve`` with a checked ``Plan`` and its ``Rendering``. This is
the one path through limits, the response cache, the engines and metering, so a new protocol
adds a parser and a renderer, never a second copy of accounting:

- admission (``Metering.admit``) runs first; nothing before it costs the key anything;
- a ``TaskPlan`` (embeddings, rerank, legacy completions) goes to its engine capability
  (``task_events``), past the response cache and the chat parsers;
- the engine's events get the model family's reasoning and tool-call parsing (``generate``);
- the meter wraps the event stream once; its usage row is committed before the last byte;
- a failure before the first event keeps its real HTTP status (the front-end's error shape);
  later ones go in-band (``Rendering.fail``); a client that leaves (streamed or not) is recorded
  as 499 and charged what its engine produced so far, an internal error as 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi.responses import Response, StreamingResponse

from glmserve.accounting.auth import Principal
from glmserve.accounting.metering import CLIENT_GONE, INTERNAL_ERROR, Metering
from glmserve.caching.cache import ResponseCache
from glmserve.engines.base import CompletionJob, EmbeddingJob, Event, Generation
from glmserve.errors import GlmError
from glmserve.http.disconnect import ClientGone, unless_gone
from glmserve.http.responses import json_response
from glmserve.parsers.pipeline import parse_stream
from glmserve.parsers.reasoning import get_reasoning_parser
from glmserve.parsers.tool_calls import formats_for
from glmserve.parsers.tool_calls.extractor import ToolCallExtractor
from glmserve.serving.model_router import Route
from glmserve.serving.plan import AnyPlan, Rendering, TaskPlan

Gone = Callable[[], Awaitable[None]]
STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def generate(route: Route, gen: Generation) -> AsyncIterator[Event]:
    """The engine's events with the model family's reasoning and tool-call parsing applied."""
    events = route.engine.stream(gen)
    reasoning = get_reasoning_parser(route.reasoning_parser) if route.reasoning_parser else None
    names = frozenset(t["function"]["name"] for t in gen.tools)
    tools = ToolCallExtractor(formats_for(route.tool_format), names) if names else None
    if reasoning is None and tools is None:
        return events
    return parse_stream(events, reasoning, tools)


def task_events(plan: TaskPlan) -> AsyncIterator[Event]:
    """The events of a non-chat task, from the route engine's capability for it."""
    engine: Any = plan.route.engine
    if isinstance(plan.task, EmbeddingJob):
        return engine.embed(plan.task)  # type: ignore[no-any-return]
    if isinstance(plan.task, CompletionJob):
        return engine.complete(plan.task)  # type: ignore[no-any-return]
    return engine.rerank(plan.task)  # type: ignore[no-any-return]


class Pipeline:
    def __init__(self, metering: Metering, cache: ResponseCache | None = None) -> None:
        self.metering = metering
        self.cache = cache

    async def serve(
        self,
        principal: Principal,
        plan: AnyPlan,
        rendering: Rendering,
        gone: Gone,
        *,
        cache_control: str | None = None,
    ) -> Response:
        """Answer ``plan``; ``gone`` returns when the client disconnects (work then stops)."""
        meter = await self.metering.admit(principal, plan)
        try:
            events, x_cache = await self._events(plan, principal.key_id, cache_control)
            events = meter.watch(events, x_cache)
            # Given to the response as it is built (adding them afterwards rescans its headers).
            headers = meter.ticket.headers
            if x_cache is not None:
                headers = {**headers, "x-cache": x_cache}
            if plan.stream:
                response = await self._stream(events, rendering, gone, headers)
            else:
                body = await unless_gone(self._collect(events, rendering), gone)
                response = json_response(body, headers=headers)
        except ClientGone:
            meter.finish_later(CLIENT_GONE, None)  # a no-op where the event stream recorded it
            return Response(status_code=CLIENT_GONE)
        except GlmError as exc:
            await meter.finish(exc.status, exc.code, strict=False)
            raise
        except Exception:
            await meter.finish(INTERNAL_ERROR, "500", strict=False)
            raise
        except BaseException:
            meter.finish_later(CLIENT_GONE, None)
            raise
        return response

    async def _events(
        self, plan: AnyPlan, scope: str | None, cache_control: str | None
    ) -> tuple[AsyncIterator[Event], str | None]:
        if isinstance(plan, TaskPlan):
            return task_events(plan), None
        route, gen = plan.route, plan.generation
        if self.cache is None:
            return generate(route, gen), None
        lookup = await self.cache.open(
            model=route.public_name, generation=gen, scope=scope,
            cache_control=cache_control, generate=lambda: generate(route, gen),
        )  # fmt: skip
        return lookup.events, lookup.status

    @staticmethod
    async def _collect(events: AsyncIterator[Event], rendering: Rendering) -> object:
        try:
            seen = [ev async for ev in events]
        finally:
            await events.aclose()  # type: ignore[attr-defined]
        return await rendering.body(seen)

    @staticmethod
    async def _stream(
        events: AsyncIterator[Event], rendering: Rendering, gone: Gone, headers: dict[str, str]
    ) -> Response:
        # Waiting for a slot happens before the first event, so a client that leaves the queue
        # is noticed, and an error there still gets a real HTTP status.
        async def first_event() -> Event | None:
            return await anext(events, None)

        try:
            first = await unless_gone(first_event(), gone)
        except BaseException:
            await events.aclose()  # type: ignore[attr-defined]
            raise

        async def body() -> AsyncIterator[bytes]:
            try:
                for frame in await rendering.open():
                    yield frame
                if first is not None:
                    for frame in rendering.encode(first):
                        yield frame
                    async for ev in events:
                        for frame in rendering.encode(ev):
                            yield frame
                for frame in await rendering.close():
                    yield frame
            except GlmError as exc:
                for frame in rendering.fail(exc):
                    yield frame
            finally:
                await events.aclose()  # type: ignore[attr-defined]

        return StreamingResponse(body(), media_type=rendering.media_type, headers=STREAM_HEADERS | headers)
