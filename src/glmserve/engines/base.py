"""The Engine protocol and the typed events every engine speaks.

An engine takes a backend-neutral ``Generation`` and yields events; the assembler is the only
code that turns events into wire chunks or a JSON response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Text:
    delta: str


@dataclass(frozen=True, slots=True)
class Reasoning:
    """``signature``: an upstream's opaque seal of the reasoning so far (Anthropic ``signature_delta``)."""

    delta: str
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    index: int
    id: str | None
    name: str | None
    arguments_delta: str


@dataclass(frozen=True, slots=True)
class Finish:
    """``stop_sequence``: which of the request's stop strings ended it, where the engine knows."""

    reason: str
    stop_sequence: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    served_by: str | None = None  # the deployment that answered, set by a deployment chain


Event = Text | Reasoning | ToolCall | Finish | Usage


@dataclass(slots=True)
class Sampling:
    temperature: float
    top_p: float
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    # llama.cpp's sampler knobs (engines.generation_defaults.ENGINE_FIELDS); None: the engine's own.
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    repeat_last_n: int | None = None
    dry_multiplier: float | None = None
    dry_base: float | None = None
    dry_allowed_length: int | None = None
    dry_penalty_last_n: int | None = None
    # Fields glmserve filled with its own defaults; upstreams then apply theirs instead.
    defaulted: frozenset[str] = frozenset()


@dataclass(slots=True)
class Generation:
    """What an engine is asked to do: OpenAI-shaped messages plus resolved sampling.

    ``tools`` maps function names to their OpenAI tool objects; ``tool_choice`` is ``"auto"``,
    ``"required"`` or a function name (``"none"`` arrives as no tools at all).
    ``json_schema`` / ``json_object`` constrain the answer. ``thinking`` is the client's
    ``thinking.type`` (``"enabled"``/``"disabled"``/``None``), passed on to upstreams;
    ``reasoning_budget`` bounds its reasoning tokens (None: the engine's default). ``headers``:
    client headers passed unchanged to an upstream of the client's own protocol
    (``anthropic-version``, ``anthropic-beta``).

    Assistant messages may carry ``reasoning_content`` (their reasoning, sent back) and
    ``thinking_blocks`` (Anthropic thinking / redacted_thinking blocks with their signatures);
    engines that cannot take them leave them out.
    """

    messages: list[dict[str, Any]]
    sampling: Sampling
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str = "auto"
    json_schema: dict[str, Any] | None = None
    json_object: bool = False
    thinking: str | None = None
    reasoning_budget: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Engine(Protocol):
    """One backend. ``stream`` yields events and ends after ``Finish`` and ``Usage``.

    Errors before the first event are raised as ``GlmError``; closing the iterator early
    (``aclose``) must stop the generation promptly. An engine may also offer
    ``async count_prompt_tokens(generation) -> int`` (see ``engines.counting``).
    """

    name: str

    def stream(self, generation: Generation) -> AsyncIterator[Event]: ...

    async def close(self) -> None: ...
