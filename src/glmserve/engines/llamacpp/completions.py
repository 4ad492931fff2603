"""Between a ``CompletionJob`` and llama.cpp's OpenAI-shaped legacy completions (``handle_completions``).

llama.cpp runs a list of prompts as one task each and streams their chunks interleaved, each
with its prompt's ``index``, and each prompt's last chunk with that prompt's usage; the events
carry the index, and one ``Usage`` at the end sums the prompts. Each chunk's timings (its
prompt's running count) make a ``Progress`` of all the prompts so far, before the chunk's text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from glmserve.engines.base import CompletionJob, CompletionText, Event, Progress, TokenLogprob, Usage
from glmserve.engines.llamacpp.translate import progress_of, to_error


def to_request(job: CompletionJob) -> dict[str, Any]:
    s = job.sampling
    body: dict[str, Any] = {
        "prompt": job.prompts,
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
        "stop": s.stop or None,
        "logprobs": None if job.logprobs is None else max(1, job.logprobs),
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def _logprobs(raw: dict[str, Any] | None, alternatives: int) -> tuple[TokenLogprob, ...]:
    if not raw:
        return ()
    return tuple(
        TokenLogprob(
            token=item["token"],
            logprob=float(item["logprob"]),
            top={t["token"]: float(t["logprob"]) for t in (item.get("top_logprobs") or [])[:alternatives]},
        )
        for item in raw.get("content") or ()
    )


@dataclass(frozen=True, slots=True)
class Counted:
    """One prompt's running count (``events`` adds the prompts up)."""

    index: int
    progress: Progress


def to_chunks(chunk: dict[str, Any] | None, alternatives: int = 1) -> list[Event | Counted]:
    """The events of one streamed chunk (``None`` ends a prompt's stream); an error raises."""
    if chunk is None:
        return []
    if "error" in chunk:
        raise to_error(chunk["error"])
    out: list[Event | Counted] = []
    choices = chunk.get("choices") or ()
    if choices and (progress := progress_of(chunk.get("timings"))) is not None:
        out.append(Counted(int(choices[0].get("index", 0)), progress))
    for choice in choices:
        logprobs = _logprobs(choice.get("logprobs"), alternatives)
        text, finish = choice.get("text") or "", choice.get("finish_reason")
        if text or finish or logprobs:
            out.append(CompletionText(int(choice.get("index", 0)), text, finish, logprobs))
    if usage := chunk.get("usage"):
        details = usage.get("prompt_tokens_details") or {}
        out.append(Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0),
                         cached_tokens=details.get("cached_tokens", 0)))  # fmt: skip
    return out


async def events(chunks: AsyncIterator[Event | Counted]) -> AsyncIterator[Event]:
    """``chunks`` with the prompts' usages summed into one ``Usage`` after the last text, and
    their running counts into one ``Progress``."""
    prompt = completion = cached = 0
    running: dict[int, Progress] = {}
    try:
        async for event in chunks:
            if isinstance(event, Usage):
                prompt, completion = prompt + event.prompt_tokens, completion + event.completion_tokens
                cached += event.cached_tokens
            elif isinstance(event, Counted):
                running[event.index] = event.progress
                yield _sum(running.values())
            else:
                yield event
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    yield Usage(prompt, completion, cached_tokens=cached)


def _sum(counts: Iterable[Progress]) -> Progress:
    each = list(counts)
    return Progress(sum(c.prompt_tokens for c in each), sum(c.completion_tokens for c in each),
                    sum(c.cached_tokens for c in each))  # fmt: skip
