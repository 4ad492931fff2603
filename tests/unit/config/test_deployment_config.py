"""The model table's shape: the documented TOML works; mistakes are refused at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from glmserve.config.deployments import Deployment
from glmserve.config.settings import ModelEntry, load_settings

CONFIG = """
[[models]]
name = "glm-4.6"
aliases = ["big"]
[[models.deployments]]
kind = "openai"
base_url = "http://127.0.0.1:9000/v1"
api_key_env = "UPSTREAM_KEY"
model = "glm-4.6"
[[models.deployments]]
kind = "embedded"
priority = 1

[[models]]
name = "local"
"""


def test_documented_shape(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    settings = load_settings(path)
    first, second = settings.models
    upstream, fallback = first.resolved_deployments()
    assert (upstream.kind, upstream.base_url, upstream.api_key_env, upstream.model) == (
        "openai",
        "http://127.0.0.1:9000/v1",
        "UPSTREAM_KEY",
        "glm-4.6",
    )
    assert upstream.weight == 1.0 and upstream.timeouts.connect == 5.0
    assert fallback.kind == "embedded" and fallback.priority == 1
    assert first.aliases == ["big"]
    assert [d.kind for d in second.resolved_deployments()] == ["embedded"]


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "openai"},
        {"kind": "vllm", "base_url": "ftp://x/v1"},
        {"kind": "vllm", "base_url": "http://user:pw@x/v1"},
        {"kind": "vllm", "base_url": "http://x/v1?key=1"},
        {"kind": "openai", "base_url": "http://x/v1", "api_key_env": "sk-live-123.abc"},
        {"kind": "embedded", "base_url": "http://x/v1"},
        {"kind": "ollama", "base_url": "http://x/v1", "gguf": "/m.gguf"},
        {"kind": "openai", "base_url": "http://x/v1", "weight": 0},
        {"kind": "openai", "base_url": "http://x/v1", "api_key": "sk-123"},
        {"kind": "mystery", "base_url": "http://x/v1"},
    ],
)
def test_bad_deployments(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Deployment.model_validate(fields)


def test_gguf_and_deployments_are_exclusive() -> None:
    with pytest.raises(ValidationError):
        ModelEntry.model_validate({"name": "x", "gguf": "/m.gguf", "deployments": [{"kind": "embedded"}]})


UPSTREAM = {"kind": "openai", "base_url": "http://x/v1"}


@pytest.mark.parametrize(
    ("fields", "sees"),
    [
        ({"deployments": [UPSTREAM | {"vision": True}]}, True),
        ({"vision": True, "deployments": [UPSTREAM, UPSTREAM | {"priority": 1}]}, True),
        ({"gguf": "/m.gguf", "mmproj": "/mmproj.gguf"}, True),
        ({"deployments": [{"kind": "embedded", "gguf": "/m.gguf", "mmproj": "/p.gguf"}]}, True),
        ({"vision": False, "deployments": [UPSTREAM | {"vision": True}]}, False),
        ({"deployments": [UPSTREAM]}, False),
        ({}, False),
    ],
)
def test_which_models_accept_images(fields: dict[str, object], sees: bool) -> None:
    assert ModelEntry.model_validate({"name": "m", **fields}).accepts_images is sees


@pytest.mark.parametrize(
    "fields",
    [
        {"vision": True},  # the packaged model has no projector
        {"mmproj": "/p.gguf"},  # a projector without its GGUF
        {"vision": True, "deployments": [UPSTREAM, {"kind": "embedded", "priority": 1}]},
        {"deployments": [UPSTREAM | {"vision": True}, UPSTREAM | {"priority": 1}]},  # a blind fallback
        {"deployments": [{"kind": "embedded", "gguf": "/m.gguf", "vision": True}]},
        {"deployments": [UPSTREAM | {"mmproj": "/p.gguf"}]},
        {"gguf": "/m.gguf", "mmproj": "/p.gguf", "deployments": [UPSTREAM]},
    ],
)
def test_images_can_never_reach_a_deployment_that_cannot_see(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ModelEntry.model_validate({"name": "m", **fields})


def test_the_projector_reaches_llama_cpp(tmp_path: Path) -> None:
    from glmserve.config.settings import EngineSettings
    from glmserve.engines.llamacpp.engine import _params

    params = _params(tmp_path / "m.gguf", EngineSettings(), tmp_path / "mmproj.gguf")
    assert params.mmproj.path == str(tmp_path / "mmproj.gguf")
    assert _params(tmp_path / "m.gguf", EngineSettings()).mmproj.path == ""
