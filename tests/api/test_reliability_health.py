"""/livez answers from the event loop under load; /readyz follows the database (issue 21)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .private_services import PrivatePostgres
from .reliability_rig import FakeProcess, livez_port_url, start_gateway
from .reliability_scenarios import held_load
from .server_process import GlmServe

# The bench's target is 50 ms at 200 streams on a quiet machine; CI shares its cores.
CI_LIVEZ_P99_MS = 250


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeProcess]:
    with FakeProcess(tmp_path_factory.mktemp("fake") / "fake.log") as started:
        yield started


@pytest.fixture(scope="module")
def gateway(fake: FakeProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlmServe]:
    with start_gateway(tmp_path_factory.mktemp("health-gw"), fake) as started:
        yield started


def test_livez_needs_nothing_and_answers_head(gateway: GlmServe) -> None:
    response = httpx.get(f"{gateway.root}/livez", timeout=5)
    assert (response.status_code, response.json()) == (200, {"status": "alive"})
    assert httpx.head(f"{gateway.root}/livez", timeout=5).status_code == 200


def test_livez_stays_fast_while_streams_run(gateway: GlmServe, fake: FakeProcess) -> None:
    verdict = held_load(gateway, fake, 16, 4)
    f = verdict.figures
    assert f["gateway"]["success"] == 1.0, f
    assert f["livez"]["failures"] == 0 and f["livez"]["p99_ms"] < CI_LIVEZ_P99_MS, f


def test_readyz_reports_models_and_the_database(gateway: GlmServe) -> None:
    response = httpx.get(f"{gateway.root}/readyz", timeout=5)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ready" and body["database"] == "ok", body
    assert body["models"]["rel"] is True


def test_readyz_is_503_while_the_database_is_down(fake: FakeProcess, tmp_path: Path) -> None:
    with PrivatePostgres() as pg, start_gateway(tmp_path, fake, {"GLMSERVE_DATABASE_URL": pg.url}) as gw:
        assert httpx.get(f"{gw.root}/readyz", timeout=5).status_code == 200
        pg.pause()
        try:
            started = time.monotonic()
            down = httpx.get(f"{gw.root}/readyz", timeout=5)
            assert down.status_code == 503 and down.json()["status"] == "not_ready", down.text
            assert time.monotonic() - started < 3, "readiness answers within its own timeout"
            assert httpx.get(f"{gw.root}/livez", timeout=5).status_code == 200, "liveness does not follow"
        finally:
            pg.resume()
        deadline = time.monotonic() + 10
        while httpx.get(f"{gw.root}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "never ready again after the database came back"
            time.sleep(0.2)


def test_the_liveness_port_answers_livez_only(gateway: GlmServe) -> None:
    url = livez_port_url(gateway)
    response = httpx.get(url, timeout=5)
    assert (response.status_code, response.json()) == (200, {"status": "alive"})
    assert httpx.head(url, timeout=5).status_code == 200
    other = httpx.get(url.replace("/livez", "/v1/models"), timeout=5)
    assert other.status_code == 404, "the liveness port serves nothing else"
