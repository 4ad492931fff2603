"""Between glmserve's ``Generation``/events and llama.cpp's OpenAI-shaped JSON."""

from __future__ import annotations

import json
from typing import Any

from glmserve.engines.base import (
    Event,
    Finish,
    Generation,
    Logprobs,
    Progress,
    Reasoning,
    Text,
    ToolCall,
    Usage,
)
from glmserve.engines.generation_defaults import engine_fields
from glmserve.engines.logprobs import logprob_entries
from glmserve.errors import ContextLengthExceeded, EngineError, GlmError, InvalidField, InvalidRequest

FORCED_TOOL_PROMPT = (
    "You can call these functions:\n<tools>\n{tools}\n</tools>\n"
    'Call exactly one of them now. Reply with only a JSON object {{"name": <function name>, '
    '"arguments": <arguments object>}}.'
)


def call_schema(gen: Generation) -> dict[str, Any]:
    """The JSON schema of one call of an allowed function (a grammar can be built from it)."""
    options = []
    for tool in gen.tools:
        fn = tool["function"]
        if gen.tool_choice not in ("required", "auto") and fn["name"] != gen.tool_choice:
            continue
        # No parameters means an empty parameter list (OpenAI's spec), not "any object".
        params = fn.get("parameters") or {"type": "object", "properties": {}, "additionalProperties": False}
        options.append(
            {
                "type": "object",
                "properties": {"name": {"const": fn["name"]}, "arguments": params},
                "required": ["name", "arguments"],
            }
        )
    return options[0] if len(options) == 1 else {"anyOf": options}


def _forced_tool_messages(gen: Generation) -> list[dict[str, Any]]:
    # llama.cpp refuses a grammar beside ``tools``, so the functions are described in the prompt.
    described = "\n".join(json.dumps(t["function"], ensure_ascii=False) for t in gen.tools)
    hint = FORCED_TOOL_PROMPT.format(tools=described)
    messages = engine_messages(gen.messages)
    if messages and messages[0]["role"] == "system":
        return [{**messages[0], "content": f"{messages[0]['content']}\n\n{hint}"}, *messages[1:]]
    return [{"role": "system", "content": hint}, *messages]


def engine_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Without Anthropic thinking blocks (llama.cpp takes the reasoning as ``reasoning_content``)."""
    return [{k: v for k, v in m.items() if k != "thinking_blocks"} for m in messages]


def to_request(gen: Generation) -> dict[str, Any]:
    """The body for ``Server.handle_chat_completions``; always streamed, always with usage, and
    with the running token counts on every chunk (``timings_per_token``, see ``to_events``).

    With stop strings, ``verbose`` makes the last chunk say which one matched (``__verbose``).
    """
    import xllamacpp

    s = gen.sampling
    body: dict[str, Any] = {
        "messages": engine_messages(gen.messages),
        "stream": True,
        "stream_options": {"include_usage": True},
        "timings_per_token": True,
        "temperature": s.temperature,
        "top_p": s.top_p,
    }
    optional = {
        "max_tokens": s.max_tokens,
        "seed": s.seed,
        "presence_penalty": s.presence_penalty,
        "frequency_penalty": s.frequency_penalty,
        "top_k": s.top_k,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    body.update(engine_fields(s))
    if s.stop:
        body["stop"] = s.stop
        body["verbose"] = True
    if gen.logprobs is not None:  # llama.cpp gives none for 0 alternatives: ask for 1, drop it
        body["logprobs"] = True
        body["top_logprobs"] = max(1, gen.logprobs)
    if gen.tools and gen.tool_choice == "auto":
        body["tools"] = gen.tools
        body["tool_choice"] = "auto"
    elif gen.tools:
        body["messages"] = _forced_tool_messages(gen)
        try:
            body["grammar"] = xllamacpp.json_schema_to_grammar(call_schema(gen))
        except ValueError as exc:
            raise InvalidField(
                f"cannot constrain output to the tools' schemas: {exc}", param="tools"
            ) from None
    elif gen.json_schema is not None:
        body["response_format"] = {"type": "json_schema", "json_schema": {"schema": gen.json_schema}}
    elif gen.json_object:
        body["response_format"] = {"type": "json_object"}
    return body


def to_events(chunk: dict[str, Any], alternatives: int = 0) -> list[Event]:
    """Events carried by one streamed llama.cpp chunk; an ``error`` chunk raises.
    ``alternatives``: how many ``top_logprobs`` each token's logprobs keep."""
    if "error" in chunk:
        raise to_error(chunk["error"])
    events: list[Event] = []
    usage = chunk.get("usage")
    if not usage and (progress := progress_of(chunk.get("timings"))) is not None:
        events.append(progress)
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        raw = choice.get("logprobs")  # the delta's own: before it
        if raw is not None and (logprobs := logprob_entries(raw)):
            kept = tuple({**e, "top_logprobs": e["top_logprobs"][:alternatives]} for e in logprobs)
            events.append(Logprobs(kept))
        if reasoning := delta.get("reasoning_content"):
            events.append(Reasoning(reasoning))
        if content := delta.get("content"):
            events.append(Text(content))
        for call in delta.get("tool_calls") or ():
            fn = call.get("function") or {}
            events.append(
                ToolCall(call.get("index", 0), call.get("id"), fn.get("name"), fn.get("arguments") or "")
            )
        if reason := choice.get("finish_reason"):
            events.append(Finish(reason, _stopping_word(chunk)))
    if usage:
        details = usage.get("prompt_tokens_details") or {}
        events.append(
            Usage(
                prompt_tokens=usage.get("prompt_tokens", 0),
                completion_tokens=usage.get("completion_tokens", 0),
                cached_tokens=details.get("cached_tokens", 0),
            )
        )
    return events


def progress_of(timings: Any) -> Progress | None:
    """The running counts of a chunk's timings: ``predicted_n`` generated, ``prompt_n`` prompt
    tokens evaluated after the ``cache_n`` reused from the prompt cache (together ``usage``'s
    ``prompt_tokens``, as its ``cached_tokens`` is ``cache_n``)."""
    if not isinstance(timings, dict) or not isinstance(timings.get("predicted_n"), int):
        return None
    cached = timings.get("cache_n") or 0
    return Progress(timings.get("prompt_n", 0) + cached, timings["predicted_n"], cached_tokens=cached)


def _stopping_word(chunk: dict[str, Any]) -> str | None:
    verbose = chunk.get("__verbose")
    if isinstance(verbose, dict) and verbose.get("stop_type") == "word":
        word = verbose.get("stopping_word")
        return word if isinstance(word, str) and word else None
    return None


def to_error(error: dict[str, Any]) -> GlmError:
    """Translate llama.cpp's error object; its message never carries client secrets."""
    message = str(error.get("message") or "llama.cpp error")
    kind = error.get("type")
    if kind == "exceed_context_size_error":
        return ContextLengthExceeded(
            f"Prompt exceeds max length: {error.get('n_prompt_tokens')} tokens requested, "
            f"the context window is {error.get('n_ctx')} tokens",
            param="messages",
        )
    if error.get("code") == 400 or kind == "invalid_request_error":
        return InvalidRequest(message)
    return EngineError(message)
