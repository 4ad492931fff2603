"""Tokenizer front-ends: Zhipu's ``POST /tokenizer`` and vLLM's / llama.cpp's ``/tokenize``, ``/detokenize``.

``/tokenizer`` (Zhipu: ``model``, ``messages``, ``tools`` → ``usage.prompt_tokens``) counts what a
chat request with those messages and tools is charged: the request goes through the chat
front-end's own checks into a ``Generation``, and the embedded engine renders it with the
model's chat template and tokenizes it (llama.cpp's ``/apply-template`` and ``/tokenize``),
without running the model (``engines.counting``: a deployment chain asks its deployments; an
OpenAI-compatible upstream has no counter, so its count is an estimate). ``/tokenize`` takes
text (``prompt``, or llama.cpp's ``content``)
or chat ``messages``; ``/detokenize`` takes ``tokens``. Both answer in both peers' field names.

These are lookups, not generations: they need a key that may use the model, and spend no RPM,
TPM or budget. ``/tokenize`` and ``/detokenize`` need an embedded model (else a 400).
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from glmserve.engines.base import Generation
from glmserve.engines.counting import count_prompt_tokens
from glmserve.errors import InvalidField
from glmserve.frontends.chat.plan import build_plan
from glmserve.frontends.chat.protocol import ChatCompletionRequest
from glmserve.ids import hex_id
from glmserve.serving.model_router import ModelRouter, Route


class TokenizerRequest(BaseModel):
    """Zhipu's shape; ``messages`` and ``tools`` are checked as a chat request's are."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    request_id: str | None = None
    user_id: str | None = None


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    prompt: str | None = None
    content: str | None = None  # llama.cpp's name for the text
    messages: list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    add_special_tokens: bool | None = None
    add_special: bool | None = None  # llama.cpp's name


class DetokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    tokens: list[int]


def engine_for(router: ModelRouter, model: str | None) -> tuple[str, Route, Any]:
    """The named model (default: the first chat model) and its embedded engine."""
    name = model or next(iter(router.names_of("chat")), "")
    route = router.resolve(name)
    if not hasattr(route.engine, "tokenize"):
        raise InvalidField(f"model '{name}' is served by upstream deployments; it has no tokenizer here",
                           param="model")  # fmt: skip
    return name, route, route.engine


async def chat_generation(
    router: ModelRouter,
    model: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    request_id: str,
) -> tuple[Route, Generation]:
    """The ``Generation`` a chat request with ``messages`` and ``tools`` becomes (same checks)."""
    route = router.resolve(model)
    if route.kind != "chat":
        raise InvalidField(f"model '{model}' is not a chat model; send `prompt` text instead", param="model")
    if not messages:
        raise InvalidField("'messages' must not be empty", param="messages")
    body: dict[str, Any] = {"model": model, "messages": messages}
    if tools:
        body["tools"] = tools
    plan = await build_plan(ChatCompletionRequest.model_validate(body), router, None, request_id)
    return route, plan.generation


async def count(router: ModelRouter, req: TokenizerRequest, request_id: str) -> int:
    """Exact for an embedded model (its template, its tokenizer); an estimate for upstream ones."""
    route, generation = await chat_generation(router, req.model, req.messages, req.tools, request_id)
    return await count_prompt_tokens(route.engine, generation)


def tokenizer_body(tokens: int, request_id: str) -> dict[str, Any]:
    return {"id": f"tok-{hex_id(12)}", "created": int(time.time()), "request_id": request_id,
            "usage": {"prompt_tokens": tokens}}  # fmt: skip


async def tokenize(req: TokenizeRequest, router: ModelRouter, request_id: str) -> dict[str, Any]:
    if req.messages is not None:
        name, _, engine = engine_for(router, req.model)
        route, generation = await chat_generation(router, name, req.messages, req.tools, request_id)
        tokens = await engine.prompt_tokens(generation)
        return {"tokens": tokens, "count": len(tokens), "max_model_len": route.context_window}
    text = req.prompt if req.prompt is not None else req.content
    if text is None:
        raise InvalidField("send `prompt` (or `content`) text, or chat `messages`", param="prompt")
    _, route, engine = engine_for(router, req.model)
    special = req.add_special_tokens if req.add_special_tokens is not None else req.add_special
    ids = await engine.tokenize(text, add_special=True if special is None else special)
    return {"tokens": ids, "count": len(ids), "max_model_len": route.context_window}


async def detokenize(req: DetokenizeRequest, router: ModelRouter) -> dict[str, Any]:
    if any(t < 0 for t in req.tokens):
        raise InvalidField("'tokens' has a negative id", param="tokens")
    _, _, engine = engine_for(router, req.model)
    text = await engine.detokenize(req.tokens)
    return {"prompt": text, "content": text}
