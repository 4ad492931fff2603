"""The README's "Upstream deployments" section names every field of the model table."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from glmserve.cli.main import app
from glmserve.config.deployments import UPSTREAM_KINDS, BreakerPolicy, Deployment, RetryPolicy, Timeouts

README = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## Upstream deployments", 1)[1].split("\n## ", 1)[0]
FIELDS = [
    *Deployment.model_fields,
    *RetryPolicy.model_fields,
    *BreakerPolicy.model_fields,
    *Timeouts.model_fields,
]


@pytest.mark.parametrize("name", sorted(set(FIELDS) | set(UPSTREAM_KINDS) | {"aliases", "embedded"}))
def test_every_field_and_kind_is_documented(name: str) -> None:
    assert name in SECTION, name


def test_models_command_and_its_option_are_documented() -> None:
    shown = CliRunner().invoke(app, ["models", "--help"], terminal_width=200).output
    assert "--no-check" in shown and "glmserve models [--config FILE] [--no-check]" in README
