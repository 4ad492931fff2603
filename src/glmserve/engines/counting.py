"""Tokens of a prompt without running it (Anthropic's ``count_tokens``), and of text an engine wrote.

An engine that can count offers ``async count_prompt_tokens(generation) -> int``:

- the embedded engine renders the prompt exactly as a generation would (chat template, tools,
  a forced tool's prompt) and tokenizes it, so the count equals that request's
  ``usage.prompt_tokens``; ``EmulatedThinking`` counts its reasoning phase's prompt;
- a deployment chain asks its deployments in priority order;
- an ``anthropic`` upstream asks the upstream's own ``count_tokens``.

Every other engine (OpenAI-compatible upstreams have no counting endpoint) gets
``estimate_prompt_tokens``: a quarter of the UTF-8 bytes of the messages and tools as JSON, plus
``PER_MESSAGE`` tokens per message for the template's markers. English averages about four
bytes a token and Chinese about four and a half, so this is close but not exact.

``count_text_tokens`` counts text the model wrote (what a stream cut before its usage had
streamed): with the embedded model's own tokenizer (``count_text_tokens(text)``, no special
tokens added), through a chain's first deployment that can, else ``estimate_text_tokens`` (a
quarter of the UTF-8 bytes).
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from glmserve.engines.base import Generation

BYTES_PER_TOKEN = 4
PER_MESSAGE = 4


def estimate_prompt_tokens(generation: Generation) -> int:
    sent = orjson.dumps({"messages": generation.messages, "tools": generation.tools})
    return math.ceil(len(sent) / BYTES_PER_TOKEN) + PER_MESSAGE * len(generation.messages)


def estimate_text_tokens(text: str) -> int:
    return math.ceil(len(text.encode()) / BYTES_PER_TOKEN)


async def count_prompt_tokens(engine: Any, generation: Generation) -> int:
    """The engine's own count where it has one, else the estimate."""
    counter = getattr(engine, "count_prompt_tokens", None)
    if counter is None:
        return estimate_prompt_tokens(generation)
    count: int = await counter(generation)
    return count


async def count_text_tokens(engine: Any, text: str) -> int:
    """The tokens of ``text`` in the engine's own vocabulary where it has one, else the estimate."""
    counter = getattr(engine, "count_text_tokens", None)
    if counter is None or not text:
        return estimate_text_tokens(text)
    count: int = await counter(text)
    return count
