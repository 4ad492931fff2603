"""The README documents every setting and command of keys, limits, usage and metrics."""

from __future__ import annotations

import pytest
from readme_sections import command_row, has_option, settings_table
from typer.testing import CliRunner

from glmserve.cli.main import app
from glmserve.config.accounting import LimitSettings, UsageSettings

TOP_LEVEL = ["master_key_file", "redis_url", "access_log", "metrics_require_key"]
SETTINGS = (
    TOP_LEVEL
    + [f"limits.{name}" for name in LimitSettings.model_fields]
    + [f"usage.{name}" for name in UsageSettings.model_fields]
)


@pytest.mark.parametrize("name", SETTINGS)
def test_every_setting_has_its_row_in_the_settings_table(name: str) -> None:
    table = settings_table()
    assert name in table, f"{name} is not in the first column of the README's settings table"
    env = "GLMSERVE_" + name.upper().replace(".", "__")
    assert env in table[name], f"{name}'s row names {sorted(table[name])}, not {env}"


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
    row = command_row(" ".join(command))
    shown = CliRunner().invoke(app, [*command, "--help"], terminal_width=200).output
    for option in options:
        assert has_option(shown, option), f"{option} missing from --help"
        assert has_option(row, option), f"{option} missing from the README's row {row!r}"
