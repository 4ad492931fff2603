"""``[jobs]`` settings are strict like every section, and their defaults are what the README says."""

from __future__ import annotations

from pathlib import Path

import pytest

from glmserve.config.check import ConfigError
from glmserve.config.settings import load_settings


def test_an_unknown_jobs_key_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "glmserve.toml"
    path.write_text("[jobs]\nlease = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value).startswith(f"unknown setting 'jobs.lease' (in {path})")


def test_a_bad_jobs_variable_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLMSERVE_JOBS__LEASE_S", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith("invalid setting 'jobs.lease_s' (from $GLMSERVE_JOBS__LEASE_S)")


def test_jobs_defaults(tmp_path: Path) -> None:
    path = tmp_path / "glmserve.toml"
    path.write_text(f'[jobs]\nfiles_dir = "{tmp_path / "shared"}"\n', encoding="utf-8")
    jobs = load_settings(path).jobs
    assert (jobs.enabled, jobs.result_ttl_s, jobs.lease_s, jobs.max_file_bytes) == (
        True,
        86400.0,
        60.0,
        100 << 20,
    )
    assert jobs.files_dir == tmp_path / "shared"
