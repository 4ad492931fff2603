"""Upstream faults under load, CI-sized (issue 21; full sizes in bench/reliability.py): 20% of
connections reset, a stall, a kill and restart, and a full outage's retry amplification."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .reliability_rig import FakeProcess, start_gateway
from .reliability_scenarios import Verdict, amplification, resets, restart, stall
from .server_process import GlmServe


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeProcess]:
    with FakeProcess(tmp_path_factory.mktemp("fake") / "fake.log") as started:
        yield started


@pytest.fixture(scope="module")
def gateway(fake: FakeProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlmServe]:
    with start_gateway(tmp_path_factory.mktemp("upstream-gw"), fake) as started:
        yield started


def held(verdict: Verdict) -> None:
    print(f"\n{verdict.name}: {verdict.figures}")
    assert verdict.passed, f"{verdict.target}: {verdict.figures}"


def test_a_fifth_of_connections_reset_costs_no_client_request(gateway: GlmServe) -> None:
    verdict = resets(gateway, 8, 4)
    held(verdict)
    assert verdict.figures["connection_retries"] > 0, "the resets were retried on fresh connections"
    assert verdict.figures["ejections"] == 0, "a 20% fault does not eject the only deployment"


def test_connection_retries_are_counted_by_reason_in_metrics(gateway: GlmServe) -> None:
    text = httpx.get(f"{gateway.root}/metrics", timeout=10).text
    reasons = {
        line.split('reason="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("glmserve_upstream_connection_retries_total{")
    }
    assert reasons == {"stale", "reset", "refused"}


def test_a_stalled_upstream_never_hangs_a_client(gateway: GlmServe, fake: FakeProcess) -> None:
    held(stall(gateway, fake, 6, 7))


def test_a_restarted_upstream_serves_within_two_seconds(gateway: GlmServe, fake: FakeProcess) -> None:
    held(restart(gateway, fake, 6, 7))


def test_a_full_outage_amplifies_load_at_most_1_2_times(gateway: GlmServe, fake: FakeProcess) -> None:
    verdict = amplification(gateway, fake, 60)
    held(verdict)
    assert verdict.figures["amp-on"]["ratio"] < 1.0, "an ejected dead upstream gets no requests"
