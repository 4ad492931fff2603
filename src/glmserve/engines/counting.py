"""Prompt tokens of a generation without running it (Anthropic's ``count_tokens``).

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


async def count_prompt_tokens(engine: Any, generation: Generation) -> int:
    """The engine's own count where it has one, else the estimate."""
    counter = getattr(engine, "count_prompt_tokens", None)
    if counter is None:
        return estimate_prompt_tokens(generation)
    count: int = await counter(generation)
    return count
