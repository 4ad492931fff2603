"""A replica killed with ``kill -9`` mid-request: its slot and budget holds expire after ``lease_s``.

Two glmserve processes share one PostgreSQL schema and one Redis, as replicas do, and serve a
slow model from a fake upstream (no engine to load). Replica A admits two streams, one for a key
with ``concurrency = 1`` and one for a key with a tiny total budget, and is killed while both run.
Replica B must go on refusing both keys, since A's slot (Redis) and budget hold (database) stay
behind, until ``limits.lease_s`` after A admitted them; then it admits both.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from .accounts import TIMEOUT_S, chat, chat_body, create_key, error_code
from .fake_upstream import FakeUpstream
from .server_process import GlmServe
from .upstream_gateway import start_gateway

LEASE_S = 15  # limits.lease_s (10 at least): room for a slow start of the two streams


@pytest.fixture
def replicas(
    tmp_path: Path, pg_schemas: Any, redis_url: str
) -> Iterator[tuple[GlmServe, GlmServe, FakeUpstream]]:
    prefix = f"glmserve-leases-{secrets.token_hex(4)}"
    env = {
        "GLMSERVE_DATABASE_URL": pg_schemas.new(),
        "GLMSERVE_REDIS_URL": redis_url,
        "GLMSERVE_LIMITS__REDIS_PREFIX": prefix,
        "GLMSERVE_LIMITS__LEASE_S": str(LEASE_S),
        "GLMSERVE_MASTER_KEY_FILE": str(tmp_path / "master.key"),
    }
    with FakeUpstream() as fake:
        up = {"kind": "openai", "base_url": fake.base_url, "health_interval_s": 0}
        table = {
            "slow": {"deployments": [up | {"model": "drip:1"}]},
            "fast": {"deployments": [up | {"model": "ok"}]},
        }
        with (
            start_gateway(tmp_path / "a", table, "unused", env, name="a") as a,
            start_gateway(tmp_path / "b", table, "unused", env, name="b") as b,
        ):
            yield a, b, fake
        client = redis.Redis.from_url(redis_url)
        try:
            stale = list(client.scan_iter(f"{prefix}:*"))
            if stale:
                client.delete(*stale)
        finally:
            client.close()


def refusals(server: GlmServe, keys: dict[str, str]) -> dict[str, tuple[int, str | None]]:
    answers = {name: chat(server, key, model="fast") for name, key in keys.items()}
    return {n: (r.status_code, error_code(r) if r.status_code != 200 else None) for n, r in answers.items()}


def test_a_crashed_replicas_slot_and_budget_hold_expire_after_lease_s(
    replicas: tuple[GlmServe, GlmServe, FakeUpstream],
) -> None:
    a, b, fake = replicas
    keys = {
        "slot": create_key(a, name="one-at-a-time", concurrency=1)[0],
        "budget": create_key(a, name="tiny-budget", budget_tokens=5, budget_period="total")[0],
    }
    held = {"slot": (429, "1302"), "budget": (429, "1113")}
    readers = []  # kept: a line iterator that is dropped closes its response
    sent = time.monotonic()
    with contextlib.ExitStack() as open_streams:
        for key in keys.values():  # each holds its slot, or its budget's worst case (prompt + 50)
            headers = {"Authorization": f"Bearer {key}"}
            http = open_streams.enter_context(
                httpx.Client(base_url=a.paas_url, headers=headers, timeout=TIMEOUT_S)
            )
            body = chat_body(max_tokens=50, stream=True, model="slow")
            stream = open_streams.enter_context(http.stream("POST", "chat/completions", json=body))
            readers.append(stream.iter_lines())
            assert next(line for line in readers[-1] if line.startswith("data:"))
        admitted_by = time.monotonic()
        assert all(r.outcome == "running" for r in fake.records if r.path.endswith("/chat/completions"))
        a.proc.kill()
        a.proc.wait(timeout=10)

    # Admitted between `sent` and `admitted_by`, so held until sent + LEASE_S at least.
    timing = f"streams admitted within {admitted_by - sent:.1f} s; now {time.monotonic() - sent:.1f} s"
    assert refusals(b, keys) == held, f"the dead replica's holds outlive it ({timing})"
    # Checked well inside the lease (a loaded machine can take a second or more per request);
    # the check must also have been answered inside it to say anything.
    time.sleep(max(0.0, sent + LEASE_S / 2 - time.monotonic()))
    still = refusals(b, keys)
    answered = time.monotonic() - sent
    assert answered < LEASE_S, f"the check took until {answered:.1f} s, past the lease"
    assert still == held, f"held {LEASE_S / 2:.0f} s after admission, answered at {answered:.1f} s ({timing})"
    time.sleep(max(0.0, admitted_by + LEASE_S + 0.5 - time.monotonic()))
    assert refusals(b, keys) == {"slot": (200, None), "budget": (200, None)}, "and not after"
    assert fake.wait_idle(5), "the upstream streams ended with the replica"
