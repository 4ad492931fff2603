"""Per-model generation defaults: what a model samples with where the client said nothing.

As vLLM applies a model's ``generation_config.json`` and Ollama a Modelfile's ``PARAMETER``s, a
model in the table may carry ``sampling`` defaults. They fill only what the request left out:

- ``temperature`` / ``top_p`` replace the Zhipu defaults (0.6 / 0.95) when the client sent none.
  A greedy request (``temperature: 0`` or ``do_sample: false``) stays greedy.
- ``top_k``, ``min_p``, the repetition penalty (``repeat_penalty`` over ``repeat_last_n`` tokens)
  and DRY (``dry_multiplier``, ``dry_base``, ``dry_allowed_length``, ``dry_penalty_last_n``) are
  not part of the Zhipu API, so a client never sends them; a default always applies, greedy
  requests included (penalties act before the greedy pick, as in llama.cpp and vLLM).

The packaged models ship measured values (``bench/quality.py``); a GGUF of one's own or an
upstream deployment gets none unless its table entry says so. What glmserve filled with the
Zhipu constants stays in ``Sampling.defaulted``, so an upstream applies its own defaults there.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from glmserve.engines.base import Sampling

# The sampler knobs llama.cpp's server reads from a request body under these very names.
ENGINE_FIELDS = (
    "top_k",
    "min_p",
    "repeat_penalty",
    "repeat_last_n",
    "dry_multiplier",
    "dry_base",
    "dry_allowed_length",
    "dry_penalty_last_n",
)


class SamplingDefaults(BaseModel):
    """The ``sampling`` section of a model table entry; every field is optional.

    The bounds are llama.cpp's own: its server refuses a look-back of -1 ("the whole context"),
    so a bad value stops start-up here rather than failing every request with a 400.
    """

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(None, ge=0, le=2, description="instead of Zhipu's 0.6")
    top_p: float | None = Field(None, gt=0, le=1, description="instead of Zhipu's 0.95")
    top_k: int | None = Field(None, ge=0, description="keep the k likeliest tokens (0: all)")
    min_p: float | None = Field(None, ge=0, le=1, description="drop tokens below min_p × the top one")
    repeat_penalty: float | None = Field(None, gt=0, description="1.0: off; >1 penalises repeats")
    repeat_last_n: int | None = Field(None, ge=0, description="tokens the penalty looks back (0: off)")
    dry_multiplier: float | None = Field(None, ge=0, description="DRY strength (0: off)")
    dry_base: float | None = Field(None, ge=1, description="DRY growth per repeated token")
    dry_allowed_length: int | None = Field(None, ge=1, description="repeats this long go unpunished")
    dry_penalty_last_n: int | None = Field(None, ge=0, description="tokens DRY looks back (0: off)")

    def as_dict(self) -> dict[str, Any]:
        """The values that are set, e.g. for ``GET /models/{id}``."""
        return self.model_dump(exclude_none=True)


def with_defaults(sampling: Sampling, defaults: SamplingDefaults | None) -> Sampling:
    """``sampling`` with the model's defaults in every place the request left to glmserve.

    ``temperature`` / ``top_p`` are replaced only where ``sampling.defaulted`` lists them (the
    client sent none and did not ask for greedy decoding); the engine-only knobs are filled where
    unset. A value taken from the model's defaults is the deployment's own choice, so it leaves
    ``defaulted`` and reaches an upstream too.
    """
    if defaults is None:
        return sampling
    changes: dict[str, Any] = {}
    for name in ("temperature", "top_p"):
        value = getattr(defaults, name)
        if name in sampling.defaulted and value is not None:
            changes[name] = value
    for name in ENGINE_FIELDS:
        value = getattr(defaults, name)
        if value is not None and getattr(sampling, name) is None:
            changes[name] = value
    if not changes:
        return sampling
    return replace(sampling, **changes, defaulted=sampling.defaulted - changes.keys())


def engine_fields(sampling: Sampling) -> dict[str, Any]:
    """The engine-only knobs that are set, under llama.cpp's names."""
    return {name: value for name in ENGINE_FIELDS if (value := getattr(sampling, name)) is not None}


# What upstreams of each kind accept of the engine-only knobs (configured defaults only, since a
# client never sends them): llama.cpp's server reads them all; vLLM and SGLang know three, one
# under another name; OpenAI refuses unknown fields and the others ignore them.
_UPSTREAM_NAMES: dict[str, dict[str, str]] = {
    "llamacpp": {name: name for name in ENGINE_FIELDS},
    "vllm": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repetition_penalty"},
    "sglang": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repetition_penalty"},
}


def upstream_fields(sampling: Sampling, kind: str) -> dict[str, Any]:
    """The engine-only knobs that are set, under the names an upstream of ``kind`` reads."""
    names = _UPSTREAM_NAMES.get(kind, {})
    return {names[k]: v for k, v in engine_fields(sampling).items() if k in names}
