"""The README documents every setting and command of keys, limits, usage and metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from glmserve.cli.main import app
from glmserve.config.accounting import LimitSettings, UsageSettings

README = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
TOP_LEVEL = ["master_key_file", "redis_url", "access_log", "metrics_require_key"]
SETTINGS = (
    TOP_LEVEL
    + [f"limits.{name}" for name in LimitSettings.model_fields]
    + [f"usage.{name}" for name in UsageSettings.model_fields]
)


@pytest.mark.parametrize("name", SETTINGS)
def test_every_setting_is_in_the_readme(name: str) -> None:
    assert f"`{name}`" in README or f"`{name}`," in README or name in README, name
    env = "GLMSERVE_" + name.upper().replace(".", "__")
    short = "…__" + name.split(".")[-1].upper()
    assert env in README or short in README, env


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (["keys", "create"], [
            "--name", "--rpm", "--tpm", "--concurrency", "--budget-tokens", "--budget-period", "--models",
            "--admin", "--expires-in-days",
        ]),
        (["keys", "rotate"], ["--grace-s"]),
        (["usage"], ["--key", "--model", "--since", "--until", "--requests", "--limit", "--json"]),
    ],
)  # fmt: skip
def test_every_command_and_option_is_in_the_readme(command: list[str], options: list[str]) -> None:
    assert f"glmserve {' '.join(command)}" in README
    shown = CliRunner().invoke(app, [*command, "--help"], terminal_width=200).output
    for option in options:
        assert option in shown, f"{option} missing from --help"
        assert option in README, f"{option} of {' '.join(command)} missing from the README"
