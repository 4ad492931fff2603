"""The Response object, and ``ResponsesRendering``: the pipeline's events as JSON or typed SSE.

A stream is ``response.created``, ``response.in_progress``, the item events of ``OutputBuilder``
and then ``response.completed`` (or ``.incomplete`` when the output was cut at
``max_output_tokens``, ``.failed`` for an error after the stream began). Every event carries a
``sequence_number`` counting from 0, and goes out as ``event: <type>`` plus ``data: <json>``.
``finish`` (given by the route) keeps the final object: it is awaited before the last event or
the JSON body leaves, so a client that reads its response id can retrieve it at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from glmserve.engines.base import Event, Usage
from glmserve.errors import GlmError
from glmserve.frontends.responses.output import Frame, OutputBuilder, output_text
from glmserve.frontends.responses.protocol import CreateResponse
from glmserve.serving.plan import Plan

Finish = Callable[[dict[str, Any]], Awaitable[None]]
INCOMPLETE = {
    "length": "max_output_tokens",
    "sensitive": "content_filter",
    "content_filter": "content_filter",
}


def usage_body(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def error_body(error: GlmError) -> dict[str, str]:
    """A ``ResponseError``: OpenAI's codes are an enum, so glmserve's own code goes in the message."""
    code = "rate_limit_exceeded" if error.status == 429 else "server_error"
    if error.status == 400 and error.param and "image" in error.message:
        code = "invalid_image"
    return {"code": code, "message": f"{error.message} (code {error.code})"}


def _tools(req: CreateResponse) -> list[dict[str, Any]]:
    out = []
    for tool in req.tools or []:
        out.append(
            {
                "type": "function",
                "name": tool["name"],
                "description": tool.get("description"),
                "parameters": tool.get("parameters"),
                "strict": tool.get("strict") if tool.get("strict") is not None else True,
            }
        )
    return out


def _text(req: CreateResponse) -> dict[str, Any]:
    fmt = req.text.format if req.text else None
    if fmt is None or fmt.type != "json_schema":
        return {"format": {"type": fmt.type if fmt else "text"}}
    body = {
        "type": "json_schema",
        "name": fmt.name or "response",
        "schema": fmt.schema_,
        "strict": fmt.strict,
    }
    if fmt.description is not None:
        body["description"] = fmt.description
    return {"format": body}


def envelope(req: CreateResponse, plan: Plan, response_id: str) -> dict[str, Any]:
    """What every form of one response repeats: its id and the request's settings."""
    sampling = plan.generation.sampling
    reasoning = req.reasoning
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "model": req.model,
        "instructions": req.instructions,
        "previous_response_id": req.previous_response_id,
        "tools": _tools(req),
        "tool_choice": req.tool_choice if req.tool_choice is not None else "auto",
        "parallel_tool_calls": req.parallel_tool_calls is not False,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_output_tokens": req.max_output_tokens,
        "reasoning": None
        if reasoning is None
        else {"effort": reasoning.effort, "summary": reasoning.summary_mode},
        "text": _text(req),
        "truncation": "disabled",
        "metadata": req.metadata or {},
        **({"user": req.user} if req.user is not None else {}),
        "store": req.stores,
        "background": bool(req.background),
        "service_tier": "default",
        "prompt_cache_key": req.prompt_cache_key,
        "safety_identifier": req.safety_identifier,
        "max_tool_calls": req.max_tool_calls,
        "top_logprobs": req.top_logprobs or 0,
    }


def response_object(
    base: dict[str, Any],
    status: str,
    output: list[dict[str, Any]] | None = None,
    usage: Usage | None = None,
    error: dict[str, str] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    output = output or []
    extra: dict[str, Any] = {} if usage is None else {"usage": usage_body(usage)}
    return {
        **base,
        **extra,
        "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": error,
        "incomplete_details": {"reason": reason} if reason else None,
        "output": output,
        "output_text": output_text(output),
    }


def final_object(base: dict[str, Any], builder: OutputBuilder) -> tuple[dict[str, Any], list[Frame]]:
    """Close the builder's items; the finished Response and the item events that closed it."""
    reason = INCOMPLETE.get(builder.finish_reason)
    frames = builder.finish("incomplete" if reason else "completed")
    status = "incomplete" if reason else "completed"
    return response_object(base, status, builder.output, builder.usage, reason=reason), frames


def sse_frame(payload: Frame) -> bytes:
    return b"event: " + str(payload["type"]).encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


@dataclass(slots=True)
class ResponsesRendering:
    """The Responses front-end's ``Rendering``; ``finish`` keeps the final object (or not)."""

    base: dict[str, Any]
    summary: bool
    finish: Finish
    spawn: Callable[[Awaitable[None]], None]
    media_type: str = "text/event-stream"
    _builder: OutputBuilder = field(init=False)
    _seq: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._builder = OutputBuilder(summary=self.summary)

    def _frames(self, frames: list[Frame]) -> list[bytes]:
        out = []
        for frame in frames:
            out.append(sse_frame({**frame, "sequence_number": self._seq}))
            self._seq += 1
        return out

    async def body(self, events: list[Event]) -> dict[str, Any]:
        for ev in events:
            self._builder.feed(ev)
        final, _ = final_object(self.base, self._builder)
        await self.finish(final)
        return final

    async def open(self) -> list[bytes]:
        started = response_object(self.base, "in_progress")
        return self._frames(
            [
                {"type": "response.created", "response": started},
                {"type": "response.in_progress", "response": started},
            ]
        )

    def encode(self, event: Event) -> list[bytes]:
        return self._frames(self._builder.feed(event))

    async def close(self) -> list[bytes]:
        final, frames = final_object(self.base, self._builder)
        await self.finish(final)
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        return self._frames([*frames, {"type": kind, "response": final}])

    def fail(self, error: GlmError) -> list[bytes]:
        frames = self._builder.finish("incomplete")
        failed = response_object(
            self.base, "failed", self._builder.output, self._builder.usage, error=error_body(error)
        )
        self.spawn(self.finish(failed))
        return self._frames([*frames, {"type": "response.failed", "response": failed}])


async def never() -> None:
    """A client that never leaves: background responses run to their end."""
    await asyncio.Event().wait()
