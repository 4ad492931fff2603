"""The README's "Upstream deployments" section names every field of the model table."""

from __future__ import annotations

import re

import pytest
from readme_sections import command_row, documented_names, has_option, section
from typer.testing import CliRunner

from glmserve.cli.main import app
from glmserve.config.deployments import UPSTREAM_KINDS, BreakerPolicy, Deployment, RetryPolicy, Timeouts

SECTION = section("Upstream deployments")
FIELDS = [
    *Deployment.model_fields,
    *RetryPolicy.model_fields,
    *BreakerPolicy.model_fields,
    *Timeouts.model_fields,
]
# The kinds as the example lists them: ``kind = "vllm"  # openai | zhipu | ...``.
KIND_LIST = re.search(r'kind = "\w+"\s*#\s*([\w |]+)', SECTION)


@pytest.mark.parametrize("name", sorted(set(FIELDS) | {"aliases"}))
def test_every_field_is_documented(name: str) -> None:
    assert name in documented_names(SECTION), f"{name} is neither a backticked name nor a TOML key there"


@pytest.mark.parametrize("kind", sorted(set(UPSTREAM_KINDS) | {"embedded"}))
def test_every_kind_is_listed(kind: str) -> None:
    assert KIND_LIST is not None, "the example's kind line lists the kinds"
    assert kind in KIND_LIST.group(1).replace("|", " ").split()


def test_models_command_and_its_option_are_documented() -> None:
    shown = CliRunner().invoke(app, ["models", "--help"], terminal_width=200).output
    assert has_option(shown, "--no-check") and has_option(command_row("models"), "--no-check")
