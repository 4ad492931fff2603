"""The Engine protocol and the typed events every engine speaks.

An engine takes a backend-neutral ``Generation`` and yields events; the assembler is the only
code that turns events into wire chunks or a JSON response. Work that is not a chat generation
(embeddings, reranking, legacy prompt completions) is a job for an engine *capability*
(``Embedder.embed``, ``Reranker.rerank``, ``Completer.complete``) that answers in the same
currency, an event stream ending in ``Usage``, so deployment chains, metering and the pipeline
treat it like any generation.
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


@dataclass(frozen=True, slots=True)
class Progress:
    """The tokens counted so far, where an engine knows them as it streams (a running ``Usage``).

    It comes *before* the deltas it counts and covers every delta up to the next ``Progress``, so
    a stream cut before its final ``Usage`` (the client left, an upstream broke off) is still
    metered exactly: the embedded engine sends one per chunk (llama.cpp's per-token timings), a
    vLLM or SGLang upstream one per chunk of its continuous usage stats. Front-ends ignore it.
    """

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Embedding:
    """The vector of input ``index`` (an embedding job's answer: one per input, then ``Usage``)."""

    index: int
    vector: list[float]


@dataclass(frozen=True, slots=True)
class Relevance:
    """How relevant document ``index`` is to a rerank job's query (one per document, then ``Usage``).

    ``score`` is in [0, 1], higher is more relevant; ``raw`` is the model's own score where it
    differs (a bi-encoder's cosine).
    """

    index: int
    score: float
    raw: float | None = None


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token: str
    logprob: float
    top: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CompletionText:
    """A legacy (prompt → text) completion's delta for prompt ``index``; ``finish`` ends that prompt."""

    index: int
    text: str
    finish: str | None = None
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class Logprobs:
    """Chat ``logprobs``: the log-probabilities of the tokens of the delta that follows, as
    OpenAI's ``logprobs.content`` entries (``token``, ``logprob``, ``bytes``, ``top_logprobs``: the
    alternatives asked for, each ``token``, ``logprob``, ``bytes``). Plain dicts: they go to the
    wire and into the response cache as they are."""

    content: tuple[dict[str, Any], ...]


ChatEvent = Text | Reasoning | ToolCall | Finish | Usage | Progress | Logprobs
Event = ChatEvent | Embedding | Relevance | CompletionText


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
    logprobs: int | None = None  # None: none; else how many alternatives (top_logprobs) per token


@dataclass(slots=True)
class EmbeddingJob:
    """Vectors for ``inputs`` (texts, or token-id arrays of the model's own vocabulary).

    ``dimensions``: a shorter vector (Matryoshka truncation), checked by the front-end against
    what the route offers; ``None`` is the model's native size.
    """

    inputs: list[str] | list[list[int]]
    dimensions: int | None = None


@dataclass(slots=True)
class RerankJob:
    query: str
    documents: list[str]


@dataclass(slots=True)
class CompletionJob:
    """A legacy completion: each prompt (text or token ids) continued as it is, no chat template."""

    prompts: list[str] | list[list[int]]
    sampling: Sampling
    logprobs: int | None = None  # alternatives per token, like OpenAI's legacy ``logprobs``


class Engine(Protocol):
    """One backend. ``stream`` yields events and ends after ``Finish`` and ``Usage``.

    Errors before the first event are raised as ``GlmError``; closing the iterator early
    (``aclose``) must stop the generation promptly. An engine may also offer
    ``async count_prompt_tokens(generation) -> int`` and ``async count_text_tokens(text) -> int``
    (see ``engines.counting``).
    """

    name: str

    def stream(self, generation: Generation) -> AsyncIterator[Event]: ...

    async def close(self) -> None: ...


class Embedder(Protocol):
    """An engine that embeds: ``embed`` yields one ``Embedding`` per input, then ``Usage``."""

    name: str

    def embed(self, job: EmbeddingJob) -> AsyncIterator[Event]: ...


class Reranker(Protocol):
    """An engine that ranks: ``rerank`` yields one ``Relevance`` per document, then ``Usage``."""

    name: str

    def rerank(self, job: RerankJob) -> AsyncIterator[Event]: ...


class Completer(Protocol):
    """An engine that continues raw prompts: ``CompletionText`` events, then ``Usage``."""

    name: str

    def complete(self, job: CompletionJob) -> AsyncIterator[Event]: ...
