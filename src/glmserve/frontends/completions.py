"""The legacy Completions front-end (``POST /completions``): a prompt continued as it is, no chat template.

``prompt`` is a string, a list of strings, one token-id array or a list of them (up to
``MAX_PROMPTS``); each prompt is one choice, in order. Streaming, ``stop``, ``echo`` (the prompt
is sent back before its continuation) and ``logprobs`` (the chosen token's log-probability and up
to 5 alternatives per token, in OpenAI's legacy shape) are honoured. Refused with a 400 naming
the field: ``suffix`` (fill-in-the-middle is not offered), ``n``/``best_of`` above 1, ``logprobs``
outside 0–5, ``echo`` together with ``logprobs`` (llama.cpp does not score prompt tokens),
``logit_bias``, and a model that does not chat. Defaults are OpenAI's: 16 tokens, temperature
and top_p 1.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

from glmserve.engines.base import CompletionJob, CompletionText, Event, Sampling, TokenLogprob, Usage
from glmserve.errors import GlmError, InvalidField
from glmserve.frontends.chat.protocol import StreamOptions
from glmserve.frontends.embeddings import route_of
from glmserve.http import sse
from glmserve.ids import hex_id
from glmserve.serving.model_router import ModelRouter
from glmserve.serving.plan import TaskPlan

MAX_PROMPTS = 16
MAX_LOGPROBS = 5
DEFAULT_MAX_TOKENS = 16


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    prompt: str | list[str] | list[int] | list[list[int]]
    suffix: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None
    best_of: int | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    logprobs: int | None = None
    echo: bool | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    seed: int | None = None
    user: str | None = None


def _refuse(field: str, message: str) -> InvalidField:
    return InvalidField(message, param=field)


def check(req: CompletionRequest) -> None:
    if req.suffix:
        raise _refuse(
            "suffix", "'suffix' is not supported: no fill-in-the-middle; send only the text before it"
        )
    if (req.n or 1) != 1 or (req.best_of or 1) != 1:
        raise _refuse(
            "n" if (req.n or 1) != 1 else "best_of", "only one completion per prompt (n = best_of = 1)"
        )
    if req.logprobs is not None and not 0 <= req.logprobs <= MAX_LOGPROBS:
        raise _refuse("logprobs", f"'logprobs' must be between 0 and {MAX_LOGPROBS}")
    if req.echo and req.logprobs is not None:
        raise _refuse("echo", "'echo' with 'logprobs' is not supported: prompt tokens are not scored")
    if req.logit_bias:
        raise _refuse("logit_bias", "'logit_bias' is not supported")
    if req.max_tokens is not None and req.max_tokens < 1:
        raise _refuse("max_tokens", "'max_tokens' must be at least 1")


def prompts_of(req: CompletionRequest) -> list[str] | list[list[int]]:
    raw = req.prompt
    prompts: list[Any] = [raw] if isinstance(raw, str) or (raw and isinstance(raw[0], int)) else list(raw)
    if not prompts or any(len(p) == 0 for p in prompts):
        raise _refuse("prompt", "'prompt' must not be empty")
    if len(prompts) > MAX_PROMPTS:
        raise _refuse("prompt", f"'prompt' has {len(prompts)} prompts; at most {MAX_PROMPTS}")
    return prompts


def sampling_of(req: CompletionRequest) -> Sampling:
    stop = [req.stop] if isinstance(req.stop, str) else [s for s in req.stop or [] if s]
    return Sampling(
        temperature=1.0 if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p,
        max_tokens=req.max_tokens or DEFAULT_MAX_TOKENS,
        stop=stop,
        seed=req.seed,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
    )


async def echoes(req: CompletionRequest, prompts: list[str] | list[list[int]], engine: Any) -> list[str]:
    """The prompt texts ``echo`` sends back (token prompts are detokenized), else empty strings."""
    if not req.echo:
        return ["" for _ in prompts]
    if isinstance(prompts[0], str):
        return list(prompts)  # type: ignore[arg-type]
    if not hasattr(engine, "detokenize"):
        raise _refuse("echo", "'echo' of token prompts needs an embedded model")
    return [await engine.detokenize(ids) for ids in prompts]  # type: ignore[arg-type]


async def build_plan(
    req: CompletionRequest, router: ModelRouter, request_id: str
) -> tuple[TaskPlan, list[str]]:
    route = route_of(router, req.model, "chat", "/completions")
    check(req)
    prompts = prompts_of(req)
    sampling = sampling_of(req)
    assert sampling.max_tokens is not None
    sizes = [len(p.encode()) if isinstance(p, str) else len(p) for p in prompts]
    tokens = sum(min(route.context_window, size + sampling.max_tokens) for size in sizes)
    plan = TaskPlan(
        route=route,
        model=req.model,
        task=CompletionJob(prompts, sampling, req.logprobs),
        tokens=tokens,
        protocol="completions",
        request_id=request_id,
        stream=bool(req.stream),
        content=lambda: orjson.dumps(prompts).decode(),
    )
    return plan, await echoes(req, prompts, route.engine)


def legacy_logprobs(items: list[TokenLogprob], offset: int) -> dict[str, Any]:
    """OpenAI's legacy shape: parallel lists, ``text_offset`` in characters of the choice's text."""
    offsets = []
    for item in items:
        offsets.append(offset)
        offset += len(item.token)
    return {
        "tokens": [i.token for i in items],
        "token_logprobs": [i.logprob for i in items],
        "top_logprobs": [i.top for i in items],
        "text_offset": offsets,
    }


class CompletionsRendering:
    media_type = "text/event-stream"

    def __init__(self, model: str, echo: list[str], logprobs: bool, include_usage: bool) -> None:
        self.id = f"cmpl-{hex_id(12)}"
        self.created = int(time.time())
        self.model, self.echo, self.logprobs, self.include_usage = model, echo, logprobs, include_usage
        self._echoed: set[int] = set()
        self._written = [0 for _ in echo]
        self._usage: Usage | None = None

    def _envelope(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
                "choices": choices}  # fmt: skip

    async def body(self, events: list[Event]) -> Any:
        texts, finishes = [""] * len(self.echo), ["stop"] * len(self.echo)
        logprobs: list[list[TokenLogprob]] = [[] for _ in self.echo]
        for ev in events:
            if isinstance(ev, CompletionText):
                texts[ev.index] += ev.text
                logprobs[ev.index] += ev.logprobs
                finishes[ev.index] = ev.finish or finishes[ev.index]
            elif isinstance(ev, Usage):
                self._usage = ev
        choices = [
            {"text": self.echo[i] + texts[i], "index": i, "finish_reason": finishes[i],
             "logprobs": legacy_logprobs(logprobs[i], len(self.echo[i])) if self.logprobs else None}
            for i in range(len(texts))
        ]  # fmt: skip
        return {**self._envelope(choices), "usage": self._usage_body()}

    def _usage_body(self) -> dict[str, int]:
        u = self._usage or Usage(0, 0)
        return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
                "total_tokens": u.prompt_tokens + u.completion_tokens}  # fmt: skip

    async def open(self) -> list[bytes]:
        return []

    def encode(self, event: Event) -> list[bytes]:
        if isinstance(event, Usage):
            self._usage = event
            return []
        if not isinstance(event, CompletionText):
            return []
        text = event.text
        if event.index not in self._echoed:
            self._echoed.add(event.index)
            text = self.echo[event.index] + text
        logprobs = None
        if self.logprobs:
            logprobs = legacy_logprobs(
                list(event.logprobs), self._written[event.index] + len(text) - len(event.text)
            )
        self._written[event.index] += len(text)
        choice = {"text": text, "index": event.index, "logprobs": logprobs, "finish_reason": event.finish}
        return [sse.event(self._envelope([choice]))]

    async def close(self) -> list[bytes]:
        frames = []
        if self.include_usage:
            frames.append(sse.event({**self._envelope([]), "usage": self._usage_body()}))
        return [*frames, sse.DONE]

    def fail(self, error: GlmError) -> list[bytes]:
        return [sse.event(error.body())]
