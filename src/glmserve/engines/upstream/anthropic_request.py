"""A ``Generation`` as the body of an Anthropic-compatible ``POST /v1/messages``.

For the ``anthropic`` deployment kind (Anthropic itself, Zhipu's ``/api/anthropic``, another
glmserve). Chat-shaped messages become Anthropic turns: system messages → ``system``; user
text and images (data URLs → ``base64`` sources, others → ``url``); an assistant's thinking
blocks (those an Anthropic upstream signed, sent back by the client), text and ``tool_use``
(arguments parsed into ``input``); ``tool`` messages → ``tool_result`` blocks of a user turn.
Consecutive turns of one role are merged, as Anthropic wants them alternating. Reasoning
without an upstream's signature is left out: the upstream would refuse it.

Sampling: ``temperature`` clamped to Anthropic's [0, 1]; defaulted fields left out;
``max_tokens`` is required there, so a request without one gets ``DEFAULT_MAX_TOKENS``.
``thinking`` enabled carries ``budget_tokens`` (the client's, else half of ``max_tokens``, at
least ``MIN_BUDGET``). ``json_schema`` → ``output_config.format``; ``json_object`` has no
Anthropic equivalent and is refused.
"""

from __future__ import annotations

from typing import Any

import orjson

from glmserve.engines.base import Generation
from glmserve.errors import InvalidField

DEFAULT_MAX_TOKENS = 8192
MIN_BUDGET = 1024
EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return content or ""


def _image(url: str) -> dict[str, Any]:
    if url.startswith("data:") and ";base64," in url:
        head, data = url[5:].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": head, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content:
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            blocks.append(_image(part["image_url"]["url"]))
    return blocks


def _input(arguments: str) -> dict[str, Any]:
    try:
        value = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _assistant_blocks(msg: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = [dict(b) for b in msg.get("thinking_blocks") or []]
    if text := _text(msg.get("content")):
        blocks.append({"type": "text", "text": text})
    for call in msg.get("tool_calls") or []:
        fn = call.get("function") or {}
        use = {
            "type": "tool_use",
            "id": call.get("id"),
            "name": fn.get("name"),
            "input": _input(fn.get("arguments", "")),
        }
        blocks.append(use)
    return blocks


def _turn(msg: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    role = msg["role"]
    if role == "assistant":
        return "assistant", _assistant_blocks(msg)
    if role == "tool":
        result = {
            "type": "tool_result",
            "tool_use_id": msg.get("tool_call_id"),
            "content": _text(msg.get("content")),
        }
        return "user", [result]
    return "user", _user_blocks(msg.get("content"))


def messages_body(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """``system`` and the alternating turns of chat-shaped ``messages``."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for msg in messages:
        if msg["role"] in ("system", "developer"):
            system.append(_text(msg.get("content")))
            continue
        role, blocks = _turn(msg)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(s for s in system if s), turns


def _sampling(gen: Generation, body: dict[str, Any]) -> None:
    s = gen.sampling
    if "temperature" not in s.defaulted:
        body["temperature"] = min(1.0, s.temperature)
    if "top_p" not in s.defaulted:
        body["top_p"] = s.top_p
    if s.top_k is not None:
        body["top_k"] = s.top_k
    if s.stop:
        body["stop_sequences"] = s.stop


def _tools(gen: Generation, body: dict[str, Any]) -> None:
    if not gen.tools:
        return
    tools = []
    for tool in gen.tools:
        fn = tool["function"]
        entry = {"name": fn["name"], "input_schema": fn.get("parameters") or EMPTY_SCHEMA}
        if fn.get("description"):
            entry["description"] = fn["description"]
        tools.append(entry)
    body["tools"] = tools
    choice = gen.tool_choice
    if choice == "auto":
        body["tool_choice"] = {"type": "auto"}
    elif choice == "required":
        body["tool_choice"] = {"type": "any"}
    else:
        body["tool_choice"] = {"type": "tool", "name": choice}


def _thinking(gen: Generation, body: dict[str, Any]) -> None:
    if gen.thinking == "disabled":
        body["thinking"] = {"type": "disabled"}
    elif gen.thinking == "enabled":
        budget = gen.reasoning_budget or max(MIN_BUDGET, body.get("max_tokens", DEFAULT_MAX_TOKENS) // 2)
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}


def prompt_body(gen: Generation, model: str) -> dict[str, Any]:
    """What ``count_tokens`` takes: the request without sampling or streaming."""
    system, messages = messages_body(gen.messages)
    body: dict[str, Any] = {"model": model, "messages": messages}
    if system:
        body["system"] = system
    _tools(gen, body)
    if gen.json_object:
        raise InvalidField(
            "an anthropic deployment cannot constrain output to any JSON object", param="response_format"
        )
    if gen.json_schema is not None:
        body["output_config"] = {"format": {"type": "json_schema", "schema": gen.json_schema}}
    return body


def request_body(gen: Generation, model: str) -> dict[str, Any]:
    body = prompt_body(gen, model)
    body["max_tokens"] = gen.sampling.max_tokens or DEFAULT_MAX_TOKENS
    body["stream"] = True
    _sampling(gen, body)
    _thinking(gen, body)
    return body
