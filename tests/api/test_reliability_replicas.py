"""Two replicas on PostgreSQL + Redis behind HAProxy, one killed mid-load (issue 21): requests
after the kill all succeed, RPM stays exact across replicas and the kill, no usage row is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .reliability_rig import FakeProcess
from .reliability_state import replicas


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeProcess]:
    with FakeProcess(tmp_path_factory.mktemp("fake") / "fake.log") as started:
        yield started


def test_one_replica_killed_behind_haproxy(fake: FakeProcess, tmp_path: Path) -> None:
    verdict = replicas(tmp_path, fake, 8, 6)
    print(f"\n{verdict.name}: {verdict.figures}")
    assert verdict.passed, f"{verdict.target}: {verdict.figures}"
