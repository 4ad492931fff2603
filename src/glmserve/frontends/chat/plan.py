"""Chat Completions request → ``Plan``: every check that can refuse the request runs here.

The other front-ends (Anthropic Messages, OpenAI Responses) translate their requests into a
``ChatCompletionRequest`` and call ``build_plan`` too, so one set of checks (tool schemas,
tool_choice, response_format, images, message order) guards every protocol.
"""

from __future__ import annotations

from typing import Any

import orjson

from glmserve.engines.base import Generation, Sampling
from glmserve.engines.generation_defaults import SamplingDefaults, with_defaults
from glmserve.errors import InvalidField, InvalidRequest
from glmserve.frontends.chat.message_rules import check_message_sequence
from glmserve.frontends.chat.protocol import ChatCompletionRequest, Message, TextPart
from glmserve.frontends.chat.tools import (
    NamedToolChoice,
    check_tool_choice,
    function_schemas,
    response_schema,
)
from glmserve.images.inputs import ImageLoader, refuse_images, vision_content
from glmserve.serving.model_router import ModelRouter, Route
from glmserve.serving.plan import Plan

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
    gen.logprobs = (req.top_logprobs or 0) if req.logprobs else None
    return gen


async def checked_images(
    route: Route, req: ChatCompletionRequest, images: ImageLoader | None
) -> dict[tuple[int, int], str]:
    """Every image checked (and fetched) before admission; a model that cannot see gets a 400."""
    if not route.vision or images is None:
        refuse_images(req.messages, req.model)
        return {}
    return await images.to_data_urls(req.messages)


def _content_log(req: ChatCompletionRequest) -> str:
    return orjson.dumps([m.model_dump(exclude_none=True) for m in req.messages]).decode()


async def build_plan(
    req: ChatCompletionRequest,
    router: ModelRouter,
    images: ImageLoader | None,
    request_id: str,
    *,
    protocol: str = "chat",
) -> Plan:
    """Resolve the model once and check everything; raises the client's 400 before admission."""
    route = router.resolve(req.model)
    if route.kind != "chat":
        raise InvalidField(f"model '{req.model}' is a {route.kind} model, which does not chat", param="model")
    check_message_sequence(req.messages)
    generation = to_generation(req, await checked_images(route, req, images), route.defaults)
    return Plan(
        route=route,
        model=req.model,
        generation=generation,
        stream=bool(req.stream),
        protocol=protocol,
        request_id=request_id,
        content=lambda: _content_log(req),
    )
