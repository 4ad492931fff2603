"""A ``Generation`` as the body and headers of an upstream's ``POST /chat/completions``.

Always streamed, and always with usage requested (``stream_options.include_usage``) so that it
is metered even when the client did not ask; Zhipu sends usage on its finish chunk unasked and
gets no ``stream_options``. vLLM and SGLang are also asked for usage on every chunk
(``continuous_usage_stats``), so a stream cut before its end is still metered exactly. Sampling
fields glmserve only defaulted are left out, so the upstream's own defaults apply. Per kind:

- ``openai``: ``max_completion_tokens``; no ``thinking`` (OpenAI rejects unknown fields);
- ``zhipu``: ``thinking: {type}``; temperature and top_p clamped into (0, 1) with greedy as
  ``do_sample: false``, as the Zhipu SDKs do; ``tool_choice`` only ``auto`` (a named choice
  sends only that function); ``json_schema`` becomes ``json_object``;
- ``vllm`` / ``sglang`` / ``llamacpp``: thinking through ``chat_template_kwargs.enable_thinking``;
- ``ollama``: thinking off through ``reasoning_effort: "none"``;
- llama.cpp's sampler knobs (``top_k``, ``min_p``, repetition and DRY penalties) only under the
  names a kind reads (``generation_defaults.upstream_fields``; OpenAI and Zhipu have none);
- the reasoning of assistant turns sent back (``reasoning_content``, which DeepSeek-style thinking
  upstreams require on tool-call turns) to every kind but ``openai``; Anthropic thinking blocks
  to none (they are for ``anthropic`` deployments, ``anthropic_request``).

The upstream key comes from configuration; the client's own credentials never reach here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt

from glmserve.engines.base import Generation
from glmserve.engines.generation_defaults import upstream_fields

JWT_LIFETIME_MS = 210_000  # what zhipuai 2.1 signs
JWT_REUSE_S = 180.0
CONTINUOUS_USAGE = frozenset({"vllm", "sglang"})  # kinds that report usage on every chunk when asked


def _sampling(gen: Generation, kind: str, body: dict[str, Any]) -> None:
    s = gen.sampling
    if "temperature" not in s.defaulted:
        body["temperature"] = s.temperature
    if "top_p" not in s.defaulted:
        body["top_p"] = s.top_p
    if s.max_tokens is not None:
        body["max_completion_tokens" if kind == "openai" else "max_tokens"] = s.max_tokens
    optional = {"seed": s.seed, "presence_penalty": s.presence_penalty}
    optional["frequency_penalty"] = s.frequency_penalty
    body.update({k: v for k, v in optional.items() if v is not None})
    body.update(upstream_fields(s, kind))
    if s.stop:
        body["stop"] = s.stop
    if gen.logprobs is not None and kind != "zhipu":  # Zhipu's API has no logprobs
        body["logprobs"] = True
        if gen.logprobs:
            body["top_logprobs"] = gen.logprobs


def _tools(gen: Generation, kind: str, body: dict[str, Any]) -> None:
    if not gen.tools:
        return
    choice = gen.tool_choice
    if kind == "zhipu":  # Zhipu accepts only "auto"
        named = [t for t in gen.tools if t["function"]["name"] == choice]
        body["tools"] = named or gen.tools
        body["tool_choice"] = "auto"
        return
    body["tools"] = gen.tools
    if choice in ("auto", "required"):
        body["tool_choice"] = choice
    else:
        body["tool_choice"] = {"type": "function", "function": {"name": choice}}


def _format(gen: Generation, kind: str, body: dict[str, Any]) -> None:
    if gen.json_schema is not None and kind != "zhipu":
        schema = {"name": "response", "schema": gen.json_schema, "strict": True}
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif gen.json_schema is not None or gen.json_object:
        body["response_format"] = {"type": "json_object"}


def _thinking(gen: Generation, kind: str, body: dict[str, Any]) -> None:
    if gen.thinking is None:
        return
    enabled = gen.thinking == "enabled"
    if kind == "zhipu":
        body["thinking"] = {"type": gen.thinking}
    elif kind in ("vllm", "sglang", "llamacpp"):
        body["chat_template_kwargs"] = {"enable_thinking": enabled}
    elif kind == "ollama" and not enabled:
        body["reasoning_effort"] = "none"


def _zhipu_ranges(body: dict[str, Any]) -> None:
    temperature = body.get("temperature")
    if temperature is not None and temperature <= 0:
        body["temperature"], body["do_sample"] = 0.01, False
    elif temperature is not None and temperature >= 1:
        body["temperature"] = 0.99
    top_p = body.get("top_p")
    if top_p is not None:
        body["top_p"] = min(0.99, max(0.01, top_p))


def _messages(gen: Generation, kind: str) -> list[dict[str, Any]]:
    internal = {"thinking_blocks", "reasoning_content"} if kind == "openai" else {"thinking_blocks"}
    return [{k: v for k, v in m.items() if k not in internal} for m in gen.messages]


def request_body(gen: Generation, kind: str, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": _messages(gen, kind), "stream": True}
    if kind in CONTINUOUS_USAGE:
        body["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
    elif kind != "zhipu":
        body["stream_options"] = {"include_usage": True}
    _sampling(gen, kind, body)
    _tools(gen, kind, body)
    _format(gen, kind, body)
    _thinking(gen, kind, body)
    if kind == "zhipu":
        _zhipu_ranges(body)
    return body


class ZhipuToken:
    """The HS256 JWT the Zhipu SDKs sign with ``id.secret`` (ms ``exp``), reused for 180 s."""

    def __init__(self, key: str, clock: Callable[[], float] = time.time):
        key_id, sep, secret = key.partition(".")
        if not sep or not key_id or not secret:
            raise ValueError("a Zhipu key for JWT auth has the form id.secret")
        self._id, self._secret, self._clock = key_id, secret, clock
        self._token = ""
        self._made = float("-inf")

    def __call__(self) -> str:
        now = self._clock()
        if now - self._made >= JWT_REUSE_S:
            now_ms = int(now * 1000)
            payload = {"api_key": self._id, "exp": now_ms + JWT_LIFETIME_MS, "timestamp": now_ms}
            headers = {"alg": "HS256", "sign_type": "SIGN"}
            self._token = jwt.encode(payload, self._secret, algorithm="HS256", headers=headers)
            self._made = now
        return self._token


def credential(kind: str, key: str | None, auth: str) -> Callable[[], str | None]:
    """What goes after ``Bearer``: the key itself, a fresh Zhipu JWT, or nothing."""
    if key is None:
        return lambda: None
    if kind == "zhipu" and auth == "jwt":
        return ZhipuToken(key)
    return lambda: key
