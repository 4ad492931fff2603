"""The chat-completions service: request model in, JSON response or SSE stream out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import Response, StreamingResponse

from glmserve import sse
from glmserve.assembler import ChunkEncoder, CompletionBuilder, Envelope, new_completion_id
from glmserve.engines.base import Event, Generation, Sampling
from glmserve.errors import GlmError, InvalidRequest
from glmserve.protocol.chat import ChatCompletionRequest, Message, TextPart
from glmserve.responses import json_response
from glmserve.routing import ModelRouter

DEFAULT_TEMPERATURE = 0.6
DEFAULT_TOP_P = 0.95
_PASSTHROUGH = ("tools", "tool_choice", "response_format")


def to_engine_message(msg: Message, model: str) -> dict[str, Any]:
    role = "system" if msg.role == "developer" else msg.role
    out: dict[str, Any] = {"role": role}
    if isinstance(msg.content, list):
        texts = []
        for part in msg.content:
            if not isinstance(part, TextPart):
                raise InvalidRequest(
                    f"model '{model}' does not accept {part.type} content; send text only",
                    param="messages",
                )
            texts.append(part.text)
        out["content"] = "\n".join(texts)
    else:
        out["content"] = msg.content or ""
    if msg.tool_calls:
        out["tool_calls"] = [c.model_dump(exclude_none=True) for c in msg.tool_calls]
    if msg.tool_call_id is not None:
        out["tool_call_id"] = msg.tool_call_id
    if msg.name is not None:
        out["name"] = msg.name
    return out


def to_generation(req: ChatCompletionRequest) -> Generation:
    greedy = req.do_sample is False or req.temperature == 0
    sampling = Sampling(
        temperature=0.0
        if greedy
        else (req.temperature if req.temperature is not None else DEFAULT_TEMPERATURE),
        top_p=req.top_p if req.top_p is not None else DEFAULT_TOP_P,
        max_tokens=req.max_tokens if req.max_tokens is not None else req.max_completion_tokens,
        stop=req.stop_list,
        seed=req.seed,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
    )
    extra = {k: v for k in _PASSTHROUGH if (v := getattr(req, k)) is not None}
    messages = [to_engine_message(m, req.model) for m in req.messages]
    return Generation(messages=messages, sampling=sampling, extra=extra)


class ChatService:
    def __init__(self, router: ModelRouter):
        self.router = router

    async def create(self, req: ChatCompletionRequest, request_id: str | None) -> Response:
        route = self.router.resolve(req.model)
        generation = to_generation(req)
        completion_id = new_completion_id()
        envelope = Envelope(id=completion_id, request_id=request_id or completion_id, model=req.model)
        events = route.engine.stream(generation)
        if req.stream:
            return await self._stream(events, ChunkEncoder(envelope, req.include_usage))
        builder = CompletionBuilder(envelope)
        try:
            async for ev in events:
                builder.add(ev)
        finally:
            await events.aclose()
        return json_response(builder.build())

    async def _stream(self, events: AsyncIterator[Event], encoder: ChunkEncoder) -> Response:
        # Errors before the first event still get a real HTTP status; later ones go in-band.
        try:
            first: Event | None = await anext(events)
        except StopAsyncIteration:
            first = None
        except BaseException:
            await events.aclose()
            raise

        async def body() -> AsyncIterator[bytes]:
            try:
                if first is not None:
                    for chunk in encoder.encode(first):
                        yield sse.event(chunk)
                    async for ev in events:
                        for chunk in encoder.encode(ev):
                            yield sse.event(chunk)
                for chunk in encoder.finish():
                    yield sse.event(chunk)
                yield sse.DONE
            except GlmError as exc:
                yield sse.event(exc.body())
            finally:
                await events.aclose()

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
