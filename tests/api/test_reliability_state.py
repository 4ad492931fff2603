"""Shared-state faults under load, CI-sized (issue 21): Redis stopped (limits fail open, and
closed), PostgreSQL restarted, glmserve killed with SIGKILL in cycles on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .private_services import PrivatePostgres
from .reliability_rig import FakeProcess
from .reliability_scenarios import Verdict
from .reliability_state import kill9_cycles, postgres_restart, redis_stop


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeProcess]:
    with FakeProcess(tmp_path_factory.mktemp("fake") / "fake.log") as started:
        yield started


def held(verdict: Verdict) -> None:
    print(f"\n{verdict.name}: {verdict.figures}")
    assert verdict.passed, f"{verdict.target}: {verdict.figures}"


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_redis_stopped_mid_load(mode: str, fake: FakeProcess, tmp_path: Path) -> None:
    held(redis_stop(tmp_path, fake, mode, 6, 6))


def test_postgres_restarted_mid_load_loses_nothing(fake: FakeProcess, tmp_path: Path) -> None:
    held(postgres_restart(tmp_path, fake, 6, 6))


def test_kill_9_cycles_on_sqlite_lose_no_row(fake: FakeProcess, tmp_path: Path) -> None:
    held(kill9_cycles(tmp_path, fake, f"sqlite+aiosqlite:///{tmp_path / 'kill9.db'}", 2, 8))


def test_kill_9_cycles_on_postgres_lose_no_row(fake: FakeProcess, tmp_path: Path) -> None:
    with PrivatePostgres() as pg:
        held(kill9_cycles(tmp_path, fake, pg.url, 2, 8))
