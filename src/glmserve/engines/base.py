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
    delta: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    index: int
    id: str | None
    name: str | None
    arguments_delta: str


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str


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
    ``thinking.type`` (``"enabled"``/``"disabled"``/``None``), passed on to upstreams.
    """

    messages: list[dict[str, Any]]
    sampling: Sampling
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str = "auto"
    json_schema: dict[str, Any] | None = None
    json_object: bool = False
    thinking: str | None = None


class Engine(Protocol):
    """One backend. ``stream`` yields events and ends after ``Finish`` and ``Usage``.

    Errors before the first event are raised as ``GlmError``; closing the iterator early
    (``aclose``) must stop the generation promptly.
    """

    name: str

    def stream(self, generation: Generation) -> AsyncIterator[Event]: ...

    async def close(self) -> None: ...
