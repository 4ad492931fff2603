"""Two glmserve processes sharing one PostgreSQL (a fresh schema) and one Redis.

They must enforce one limit exactly, see each other's usage rows, and refuse a revoked or
expired key within a second, whichever replica revoked it.
"""

from __future__ import annotations

import concurrent.futures
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from . import server_process
from .accounts import TIMEOUT_S, admin, chat, chat_body, create_key, error_code
from .credentials import new_zhipu_key
from .server_process import GlmServe

REFUSAL_DEADLINE_S = 1.0


@pytest.fixture(scope="module")
def replicas(
    data_dir: Path, tmp_path_factory: pytest.TempPathFactory, pg_schemas: Any, redis_url: str
) -> Iterator[tuple[GlmServe, GlmServe]]:
    prefix = f"glmserve-replicas-{secrets.token_hex(4)}"
    env = {
        "GLMSERVE_DATABASE_URL": pg_schemas.new(),
        "GLMSERVE_REDIS_URL": redis_url,
        "GLMSERVE_LIMITS__REDIS_PREFIX": prefix,
        "GLMSERVE_ENGINE__PARALLEL": "2",
    }
    static = new_zhipu_key()
    logs = tmp_path_factory.mktemp("replicas")
    with server_process.replica_pair(data_dir, logs, (static, static), env, redis_url, prefix) as pair:
        yield pair


def test_two_replicas_enforce_one_rpm_limit_exactly(replicas: tuple[GlmServe, GlmServe]) -> None:
    a, b = replicas
    key, key_id = create_key(a, name="shared-rpm", rpm=6)
    targets = [a, b] * 7
    with concurrent.futures.ThreadPoolExecutor(len(targets)) as pool:
        responses = list(pool.map(lambda server: chat(server, key), targets))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 6 + [429] * 8, statuses
    assert {error_code(r) for r in responses if r.status_code == 429} == {"1303"}
    served_by = {id(s) for s, r in zip(targets, responses, strict=True) if r.status_code == 200}
    print(f"\nreplicas: 6 of 14 admitted, by {len(served_by)} replica(s)")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the 429 rows are written without holding up the answer
        with admin(b) as http:
            rows = http.get("/admin/usage", params={"key_id": key_id}).json()["data"]
        if len(rows) == len(targets):
            break
        time.sleep(0.1)
    assert sorted(r["status"] for r in rows) == statuses, (
        "each replica records its rows in the shared database"
    )


def test_a_stream_on_one_replica_holds_the_slot_on_the_other(replicas: tuple[GlmServe, GlmServe]) -> None:
    a, b = replicas
    key, _ = create_key(b, name="shared-slot", concurrency=1)
    headers = {"Authorization": f"Bearer {key}"}
    http = httpx.Client(base_url=a.paas_url, headers=headers, timeout=TIMEOUT_S)
    with http, http.stream("POST", "chat/completions", json=chat_body(max_tokens=16, stream=True)) as stream:
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))
        busy = chat(b, key)
        assert (busy.status_code, error_code(busy)) == (429, "1302")
        assert [line for line in lines if line.startswith("data:")][-1] == "data: [DONE]"
    assert chat(b, key).status_code == 200


def _refused_within(server: GlmServe, key: str, started: float) -> float:
    """Seconds from ``started`` until ``server`` refuses ``key``."""
    while (response := chat(server, key)).status_code == 200:
        assert time.monotonic() - started < 10, "the key was never refused"
    assert response.status_code == 401, response.text
    return time.monotonic() - started


def test_revocation_on_one_replica_is_seen_by_the_other(replicas: tuple[GlmServe, GlmServe]) -> None:
    a, b = replicas
    key, key_id = create_key(a, name="revoked-across")
    assert chat(a, key).status_code == 200 and chat(b, key).status_code == 200
    with admin(a) as http:
        assert http.post(f"/admin/keys/{key_id}/revoke").status_code == 200
    revoked_at = time.monotonic()
    assert _refused_within(b, key, revoked_at) < REFUSAL_DEADLINE_S

    other, other_id = create_key(b, name="revoked-by-cli")
    assert chat(a, other).status_code == 200
    b.cli("keys", "revoke", other_id)  # the CLI, pointed at the same database
    assert _refused_within(a, other, time.monotonic()) < REFUSAL_DEADLINE_S


def test_expiry_is_seen_by_every_replica(replicas: tuple[GlmServe, GlmServe]) -> None:
    a, b = replicas
    with admin(a) as http:
        created = http.post("/admin/keys", json={"name": "expiring", "expires_in_s": 2}).json()
    key, expires_at = created["key"], created["expires_at"]
    assert chat(b, key).status_code == 200
    time.sleep(max(0.0, expires_at - time.time()))
    at_expiry = time.monotonic()
    for server in (a, b):
        assert _refused_within(server, key, at_expiry) < REFUSAL_DEADLINE_S
    assert error_code(chat(a, key)) == "1003"
