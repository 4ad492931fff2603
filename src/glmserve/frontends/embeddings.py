"""The Embeddings front-end (``POST /embeddings``, OpenAI and Zhipu shape): parse → ``TaskPlan`` → JSON.

Every refusal happens before admission, each a 400 naming its field: a model that does not
embed, an empty input, more inputs than ``embeddings.max_inputs`` (Zhipu allows 64), a negative
token id, a ``dimensions`` the model does not offer (the message lists the sizes it does:
Matryoshka models such as EmbeddingGemma offer shorter prefixes, others only their native size).
An input longer than the model's per-input limit is a 400 from the engine, never truncated.
``input`` may be a string, a list of strings, one token-id array or a list of them (ids of the
model's own vocabulary, as ``/tokenize`` gives them). ``encoding_format`` ``base64`` sends each
vector as little-endian float32 bytes (what the openai SDK asks for by default, and decodes).
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict

from glmserve.engines.base import Embedding, EmbeddingJob, Event, Usage
from glmserve.errors import InvalidField
from glmserve.frontends.json_rendering import JsonRendering
from glmserve.serving.model_router import ModelRouter, Route
from glmserve.serving.plan import TaskPlan

SPECIAL_TOKENS_PER_INPUT = 2  # [CLS]/[SEP], <bos>/<eos>: added to every input by the tokenizer


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = None
    user: str | None = None
    request_id: str | None = None


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def route_of(router: ModelRouter, model: str, kind: str, endpoint: str) -> Route:
    route = router.resolve(model)
    if route.kind != kind:
        names = ", ".join(router.names_of(kind)) or "none is configured"
        wanted = f"{article(kind)} {kind} model ({names})"
        raise InvalidField(
            f"model '{model}' is {article(route.kind)} {route.kind} model; {endpoint} takes {wanted}",
            param="model",
        )
    return route


def inputs_of(req: EmbeddingRequest, limit: int) -> list[str] | list[list[int]]:
    raw = req.input
    inputs: list[Any] = [raw] if isinstance(raw, str) or (raw and isinstance(raw[0], int)) else list(raw)
    if not inputs:
        raise InvalidField("'input' must not be empty", param="input")
    if len(inputs) > limit:
        raise InvalidField(f"'input' has {len(inputs)} items; at most {limit} per request", param="input")
    for i, item in enumerate(inputs):
        if len(item) == 0:
            raise InvalidField(
                f"'input[{i}]' is empty; every input needs text or tokens", param=f"input[{i}]"
            )
        if not isinstance(item, str) and min(item) < 0:
            raise InvalidField(f"'input[{i}]' has a negative token id", param=f"input[{i}]")
    return inputs


def dimensions_of(req: EmbeddingRequest, route: Route) -> int | None:
    if req.dimensions is None:
        return None
    if req.dimensions < 1:
        raise InvalidField("'dimensions' must be at least 1", param="dimensions")
    if not route.dimensions:  # upstream only, sizes not configured: the upstream decides
        return req.dimensions
    if req.dimensions not in route.dimensions:
        offered = ", ".join(str(d) for d in route.dimensions)
        raise InvalidField(
            f"model '{req.model}' does not offer dimensions={req.dimensions}; it offers {offered}",
            param="dimensions",
        )
    return None if req.dimensions == route.dimensions[0] else req.dimensions


def token_bound(inputs: list[str] | list[list[int]], per_input: int) -> int:
    """No more tokens than UTF-8 bytes plus the special ones, and the model's limit per input."""
    if inputs and isinstance(inputs[0], str):
        return sum(min(per_input, len(s.encode()) + SPECIAL_TOKENS_PER_INPUT) for s in inputs)  # type: ignore[union-attr]
    return sum(min(per_input, len(ids)) for ids in inputs)


def build_plan(req: EmbeddingRequest, router: ModelRouter, max_inputs: int, request_id: str) -> TaskPlan:
    route = route_of(router, req.model, "embedding", "/embeddings")
    inputs = inputs_of(req, max_inputs)
    job = EmbeddingJob(inputs, dimensions_of(req, route))
    return TaskPlan(
        route=route,
        model=req.model,
        task=job,
        tokens=token_bound(inputs, route.context_window),
        protocol="embeddings",
        request_id=request_id,
        content=lambda: orjson.dumps(inputs).decode(),
    )


def encode(vector: list[float], fmt: str | None) -> list[float] | str:
    if fmt == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
    return vector


class EmbeddingsRendering(JsonRendering):
    def __init__(self, model: str, encoding_format: str | None) -> None:
        self.model = model
        self.encoding_format = encoding_format

    async def body(self, events: list[Event]) -> Any:
        data, tokens = [], 0
        for ev in events:
            if isinstance(ev, Embedding):
                vector = encode(ev.vector, self.encoding_format)
                data.append({"object": "embedding", "index": ev.index, "embedding": vector})
            elif isinstance(ev, Usage):
                tokens = ev.prompt_tokens
        usage = {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}
        return {"object": "list", "data": data, "model": self.model, "usage": usage}
