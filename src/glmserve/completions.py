"""The chat-completions service: request model in, JSON response or SSE stream out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi.responses import Response, StreamingResponse

from glmserve import sse
from glmserve.assembler import ChunkEncoder, CompletionBuilder, Envelope, new_completion_id
from glmserve.cache import ResponseCache
from glmserve.disconnect import ClientGone, unless_gone
from glmserve.engines.base import Event, Generation, Sampling
from glmserve.engines.generation_defaults import SamplingDefaults, with_defaults
from glmserve.errors import GlmError, InvalidRequest
from glmserve.images.inputs import ImageLoader, refuse_images, vision_content
from glmserve.parsers.pipeline import parse_stream
from glmserve.parsers.reasoning import get_reasoning_parser
from glmserve.parsers.tool_calls import formats_for
from glmserve.parsers.tool_calls.extractor import ToolCallExtractor
from glmserve.protocol.chat import ChatCompletionRequest, Message, TextPart
from glmserve.protocol.tools import (
    NamedToolChoice,
    check_tool_choice,
    function_schemas,
    response_schema,
)
from glmserve.responses import json_response
from glmserve.routing import ModelRouter, Route
from glmserve.thinking import think_then_answer

Observer = Callable[[AsyncIterator[Event], str | None], AsyncIterator[Event]]
DEFAULT_TEMPERATURE = 0.6
DEFAULT_TOP_P = 0.95


def _content(msg: Message, model: str) -> str:
    if not isinstance(msg.content, list):
        return msg.content or ""
    texts = []
    for part in msg.content:
        if not isinstance(part, TextPart):
            what = "images" if part.type == "image_url" else f"{part.type} content"
            raise InvalidRequest(f"model '{model}' does not accept {what}; send text only", param="messages")
        texts.append(part.text)
    return "\n".join(texts)


def to_engine_message(
    msg: Message, model: str, keep_reasoning: bool = False, parts: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """``parts``: the message's content parts with checked images (vision routes only)."""
    role = "system" if msg.role == "developer" else msg.role
    content: str | list[dict[str, Any]] = _content(msg, model) if parts is None else parts
    reasoning = msg.reasoning_content or msg.reasoning
    if keep_reasoning and role == "assistant" and reasoning and isinstance(content, str):
        content = f"<think>\n{reasoning}\n</think>\n\n{content}"
    out: dict[str, Any] = {"role": role, "content": content}
    if msg.tool_calls:
        out["tool_calls"] = [c.model_dump(exclude_none=True) for c in msg.tool_calls]
    if msg.tool_call_id is not None:
        out["tool_call_id"] = msg.tool_call_id
    if msg.name is not None:
        out["name"] = msg.name
    return out


def _tool_choice(req: ChatCompletionRequest) -> str:
    if isinstance(req.tool_choice, NamedToolChoice):
        return req.tool_choice.function.name
    return req.tool_choice or "auto"


def _engine_messages(
    req: ChatCompletionRequest, keep: bool, images: dict[tuple[int, int], str]
) -> list[dict[str, Any]]:
    out = []
    for i, msg in enumerate(req.messages):
        parts = vision_content(msg, i, images) if any(at == i for at, _ in images) else None
        out.append(to_engine_message(msg, req.model, keep, parts))
    return out


def to_generation(
    req: ChatCompletionRequest,
    images: dict[tuple[int, int], str] | None = None,
    defaults: SamplingDefaults | None = None,
) -> Generation:
    """``images``: ``(message, part) → data URL`` of every checked image, for a model that can see.
    ``defaults``: the model's generation defaults, for what the request left out."""
    greedy = req.do_sample is False or req.temperature == 0
    temperature = req.temperature if req.temperature is not None else DEFAULT_TEMPERATURE
    sampling = Sampling(
        temperature=0.0 if greedy else temperature,
        top_p=req.top_p if req.top_p is not None else DEFAULT_TOP_P,
        max_tokens=req.max_tokens if req.max_tokens is not None else req.max_completion_tokens,
        stop=req.stop_list,
        seed=req.seed,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        defaulted=frozenset(
            name for name in ("temperature", "top_p") if getattr(req, name) is None and not greedy
        ),
    )
    sampling = with_defaults(sampling, defaults)
    keep = bool(req.thinking and req.thinking.clear_thinking is False)
    gen = Generation(messages=_engine_messages(req, keep, images or {}), sampling=sampling)
    functions = function_schemas(req.tools or [], req.model)
    check_tool_choice(req.tool_choice, functions)
    choice = _tool_choice(req)
    if functions and choice != "none":
        gen.tools = [t.model_dump(exclude_none=True) for t in req.tools or [] if t.type == "function"]
        gen.tool_choice = choice
    gen.json_schema = response_schema(req.response_format)
    gen.json_object = req.response_format is not None and req.response_format.type == "json_object"
    gen.thinking = req.thinking.type if req.thinking else None
    return gen


def generate(route: Route, req: ChatCompletionRequest, gen: Generation) -> AsyncIterator[Event]:
    """The engine's events with the model family's reasoning and tool-call parsing applied."""
    thinking = req.thinking.type if req.thinking else None
    emulate = route.emulate_thinking and route.reasoning_parser is None and thinking == "enabled"
    events = think_then_answer(route.engine, gen) if emulate else route.engine.stream(gen)
    reasoning = get_reasoning_parser(route.reasoning_parser) if route.reasoning_parser else None
    names = frozenset(t["function"]["name"] for t in gen.tools)
    tools = ToolCallExtractor(formats_for(route.tool_format), names) if names else None
    if reasoning is None and tools is None:
        return events
    return parse_stream(events, reasoning, tools)


class ChatService:
    def __init__(
        self, router: ModelRouter, cache: ResponseCache | None = None, images: ImageLoader | None = None
    ):
        self.router = router
        self.cache = cache
        self.images = images

    async def _images(self, route: Route, req: ChatCompletionRequest) -> dict[tuple[int, int], str]:
        """Every image checked (and fetched) before generation; a model that cannot see gets a 400."""
        if not route.vision or self.images is None:
            refuse_images(req.messages, req.model)
            return {}
        return await self.images.to_data_urls(req.messages)

    async def create(
        self,
        req: ChatCompletionRequest,
        request_id: str | None,
        gone: Callable[[], Awaitable[None]],
        observe: Observer | None = None,
        *,
        scope: str | None = None,
        cache_control: str | None = None,
    ) -> Response:
        """``gone`` returns when the client disconnects; work still waiting or running then stops.

        ``observe`` wraps the event stream (usage metering), told the cache's verdict; it runs to
        its end before the last bytes of the response are produced. ``scope`` (the API key's id)
        and ``cache_control`` (the request's header) steer the response cache.
        """
        route = self.router.resolve(req.model)
        generation = to_generation(req, await self._images(route, req), route.defaults)
        completion_id = new_completion_id()
        envelope = Envelope(id=completion_id, request_id=request_id or completion_id, model=req.model)
        x_cache: str | None = None
        if self.cache is None:
            events = generate(route, req, generation)
        else:
            lookup = await self.cache.open(
                model=route.public_name, req=req, generation=generation, scope=scope,
                cache_control=cache_control, generate=lambda: generate(route, req, generation),
            )  # fmt: skip
            events, x_cache = lookup.events, lookup.status
        if observe is not None:
            events = observe(events, x_cache)
        try:
            if req.stream:
                response = await self._stream(events, ChunkEncoder(envelope, req.include_usage), gone)
            else:
                response = json_response(await unless_gone(self._collect(events, envelope), gone))
        except ClientGone:
            return Response(status_code=499)
        if x_cache is not None:
            response.headers["x-cache"] = x_cache
        return response

    async def _collect(self, events: AsyncIterator[Event], envelope: Envelope) -> dict[str, Any]:
        builder = CompletionBuilder(envelope)
        try:
            async for ev in events:
                builder.add(ev)
        finally:
            await events.aclose()  # type: ignore[attr-defined]
        return builder.build()

    async def _stream(
        self, events: AsyncIterator[Event], encoder: ChunkEncoder, gone: Callable[[], Awaitable[None]]
    ) -> Response:
        # Errors before the first event still get a real HTTP status; later ones go in-band.
        # Waiting for a slot happens here too, so a client that leaves the queue is noticed.
        async def first_event() -> Event | None:
            return await anext(events, None)

        try:
            first = await unless_gone(first_event(), gone)
        except BaseException:
            await events.aclose()  # type: ignore[attr-defined]
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
                for chunk in encoder.finish():  # e.g. finish_reason "network_error" first
                    yield sse.event(chunk)
                yield sse.event(exc.body())
            finally:
                await events.aclose()  # type: ignore[attr-defined]

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
