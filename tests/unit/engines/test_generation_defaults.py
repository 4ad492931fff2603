"""Per-model generation defaults: they fill only what a request left out, and reach llama.cpp."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from glmserve.config.settings import ModelEntry, default_models
from glmserve.engines.generation_defaults import SamplingDefaults
from glmserve.engines.llamacpp.models import PACKAGED, QWEN_CODER_05B, QWEN_CODER_15B
from glmserve.engines.llamacpp.translate import to_request
from glmserve.engines.upstream.request import request_body
from glmserve.frontends.chat.plan import to_generation
from glmserve.frontends.chat.protocol import ChatCompletionRequest

BASE: dict[str, Any] = {"model": "glm-4.6", "messages": [{"role": "user", "content": "hi"}]}
MODEL = SamplingDefaults(
    temperature=0.7, top_p=0.8, top_k=20, min_p=0.05, repeat_penalty=1.05, repeat_last_n=128,
    dry_multiplier=0.8, dry_base=1.75, dry_allowed_length=2, dry_penalty_last_n=4096,
)  # fmt: skip


def generation(defaults: SamplingDefaults | None, **patch: Any) -> Any:
    return to_generation(ChatCompletionRequest.model_validate({**BASE, **patch}), None, defaults)


def test_unsent_temperature_and_top_p_come_from_the_model() -> None:
    s = generation(MODEL).sampling
    assert (s.temperature, s.top_p) == (0.7, 0.8)
    assert s.defaulted == frozenset()  # the model's own choice: an upstream gets it too


def test_what_the_client_sent_wins() -> None:
    s = generation(MODEL, temperature=0.9, top_p=0.7).sampling
    assert (s.temperature, s.top_p) == (0.9, 0.7)


@pytest.mark.parametrize("greedy", [{"temperature": 0}, {"do_sample": False}])
def test_greedy_stays_greedy_but_keeps_the_penalties(greedy: dict[str, Any]) -> None:
    s = generation(MODEL, **greedy).sampling
    assert s.temperature == 0.0
    assert (s.repeat_penalty, s.dry_multiplier) == (1.05, 0.8)


def test_without_defaults_the_zhipu_constants_apply_and_are_marked() -> None:
    s = generation(None).sampling
    assert (s.temperature, s.top_p) == (0.6, 0.95)
    assert s.defaulted == {"temperature", "top_p"}
    assert s.top_k is None and s.repeat_penalty is None


def test_partial_defaults_leave_the_rest_to_zhipu() -> None:
    s = generation(SamplingDefaults(top_k=40)).sampling
    assert (s.temperature, s.top_k) == (0.6, 40)
    assert s.defaulted == {"temperature", "top_p"}


def test_engine_knobs_reach_the_llama_cpp_body() -> None:
    body = to_request(generation(MODEL))
    assert {k: body[k] for k in ("top_k", "min_p", "repeat_penalty", "repeat_last_n")} == {
        "top_k": 20, "min_p": 0.05, "repeat_penalty": 1.05, "repeat_last_n": 128,
    }  # fmt: skip
    assert (body["dry_multiplier"], body["dry_base"], body["dry_allowed_length"]) == (0.8, 1.75, 2)
    assert body["dry_penalty_last_n"] == 4096
    assert "top_k" not in to_request(generation(None))


def test_an_upstream_gets_no_defaults_unless_configured() -> None:
    plain = request_body(generation(None), "vllm", "m")
    assert "temperature" not in plain and "top_p" not in plain and "top_k" not in plain
    configured = request_body(generation(SamplingDefaults(temperature=0.3)), "vllm", "m")
    assert configured["temperature"] == 0.3


def test_the_default_table_serves_the_quality_model_and_the_fast_one() -> None:
    entries = default_models()
    assert all(e.generation_defaults() is None for e in entries if e.kind != "chat")  # embedding, rerank
    table = {e.name: e for e in entries if e.kind == "chat"}
    assert {n: e.packaged for n, e in table.items()} == {
        "glm-4.6": QWEN_CODER_15B.name, "glm-4.5": QWEN_CODER_15B.name,
        "glm-4.5-air": QWEN_CODER_15B.name, "glm-4.5-flash": QWEN_CODER_05B.name,
    }  # fmt: skip
    assert table["glm-4.6"].generation_defaults() == QWEN_CODER_15B.sampling
    assert table["glm-4.5-flash"].generation_defaults() == QWEN_CODER_05B.sampling


def test_packaged_models_ship_measured_defaults() -> None:
    for model in PACKAGED.values():
        shipped = model.sampling.as_dict()
        assert {"temperature", "top_p", "top_k"} <= shipped.keys(), model.name


def test_own_gguf_and_upstreams_get_none_unless_configured() -> None:
    assert ModelEntry(name="x", gguf=Path("/m.gguf")).generation_defaults() is None
    upstream = {"kind": "vllm", "base_url": "http://gpu:8000/v1"}
    assert ModelEntry(name="x", deployments=[upstream]).generation_defaults() is None
    mixed = [upstream, {"kind": "embedded"}]
    assert ModelEntry(name="x", deployments=mixed).generation_defaults() is None
    configured = ModelEntry(name="x", gguf=Path("/m.gguf"), sampling={"top_k": 5})
    assert configured.generation_defaults() == SamplingDefaults(top_k=5)


def test_an_empty_section_turns_the_packaged_defaults_off() -> None:
    assert ModelEntry(name="x", sampling={}).generation_defaults() == SamplingDefaults()
    off = ModelEntry(name="x", sampling={}).generation_defaults()
    assert "top_k" not in to_request(generation(off))


@pytest.mark.parametrize(
    "bad",
    [
        {"top_k": -1},
        {"temperature": 3},
        {"repeat_penalty": 0},
        {"typo_k": 1},
        {"top_p": 0},
        {"repeat_last_n": -1},
    ],
)
def test_bad_defaults_stop_start_up(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ModelEntry(name="x", sampling=bad)


def test_unknown_packaged_model_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValidationError, match=QWEN_CODER_05B.name):
        ModelEntry(name="x", packaged="qwen-99b")


def test_configured_engine_knobs_reach_upstreams_that_read_them() -> None:
    gen = generation(MODEL)
    assert request_body(gen, "vllm", "m")["repetition_penalty"] == 1.05
    assert "dry_multiplier" not in request_body(gen, "vllm", "m")
    assert request_body(gen, "llamacpp", "m")["dry_multiplier"] == 0.8
    for kind in ("openai", "zhipu", "ollama"):
        assert "top_k" not in request_body(gen, kind, "m"), kind
