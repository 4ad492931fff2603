"""Two glmserve processes sharing one PostgreSQL (a fresh schema) and one Redis.

They must enforce one RPM, TPM and budget exactly, see each other's usage rows, and refuse a
revoked or expired key on its next request, whichever replica revoked it.
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
from .accounts import TIMEOUT_S, admin, chat, chat_body, create_key, error_code, refused_within
from .credentials import new_zhipu_key
from .server_process import GlmServe


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


def test_two_replicas_enforce_one_tpm_limit(replicas: tuple[GlmServe, GlmServe]) -> None:
    """Each request's real tokens count on both replicas: the limit falls on the request it must."""
    a, b = replicas
    probe, _ = create_key(a, name="tpm-probe")
    tokens = chat(a, probe).json()["usage"]["total_tokens"]  # what each request below uses
    key, _ = create_key(a, name="shared-tpm", tpm=2 * tokens - 1)

    statuses = [chat(server, key).status_code for server in (a, b, a, b)]

    # a: 0 < limit, admitted; b: `tokens` < limit, admitted; then 2 * tokens >= limit on either.
    assert statuses == [200, 200, 429, 429], (tokens, statuses)
    refused = chat(a, key)
    assert error_code(refused) == "1303" and refused.headers["x-ratelimit-remaining-tokens"] == "0"


def test_two_replicas_share_one_monthly_budget(replicas: tuple[GlmServe, GlmServe]) -> None:
    a, b = replicas
    probe, _ = create_key(a, name="budget-probe")
    tokens = chat(a, probe).json()["usage"]["total_tokens"]
    key, key_id = create_key(a, name="shared-month", budget_tokens=tokens + 1, budget_period="month")

    first, second = chat(a, key), chat(b, key)  # b admits with 1 token left: the one overshoot
    third, fourth = chat(a, key), chat(b, key)

    assert (first.status_code, second.status_code) == (200, 200)
    for refused in (third, fourth):
        assert (refused.status_code, error_code(refused)) == (429, "1308")
        assert refused.headers["x-should-retry"] == "false"
    with admin(b) as http:
        assert http.get(f"/admin/keys/{key_id}").json()["budget_used"] == 2 * tokens


def test_revocation_on_one_replica_is_seen_by_the_other_within_a_second(
    replicas: tuple[GlmServe, GlmServe],
) -> None:
    a, b = replicas
    key, key_id = create_key(a, name="revoked-across")
    assert chat(a, key).status_code == 200 and chat(b, key).status_code == 200  # cached on both
    with admin(a) as http:
        assert http.post(f"/admin/keys/{key_id}/revoke").status_code == 200
    refused = chat(a, key)  # the replica that revoked it: the very next request
    assert (refused.status_code, error_code(refused)) == (401, "1002")
    refused = refused_within(b, key)  # the other: within a second, its key cache notwithstanding
    assert (refused.status_code, error_code(refused)) == (401, "1002")

    other, other_id = create_key(b, name="revoked-by-cli")
    assert chat(a, other).status_code == 200
    b.cli("keys", "revoke", other_id)  # the CLI, pointed at the same database
    refused = refused_within(a, other)
    assert (refused.status_code, error_code(refused)) == (401, "1002")


def test_expiry_is_seen_by_every_replica_on_the_next_request(replicas: tuple[GlmServe, GlmServe]) -> None:
    a, b = replicas
    with admin(a) as http:
        created = http.post("/admin/keys", json={"name": "expiring", "expires_in_s": 2}).json()
    key, expires_at = created["key"], created["expires_at"]
    assert chat(b, key).status_code == 200
    time.sleep(max(0.0, expires_at - time.time()))
    for server in (a, b):  # the first request of each at or after expires_at
        expired = chat(server, key)
        assert (expired.status_code, error_code(expired)) == (401, "1003")
