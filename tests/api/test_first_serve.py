"""A fresh install: the first ``serve`` prints one admin key, once; ``metrics_require_key``.

The server here has no static key and serves one model from a fake upstream, so it starts
without loading the embedded model.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .accounts import admin, chat, create_key, error_code
from .fake_upstream import FakeUpstream
from .server_process import GlmServe
from .upstream_gateway import start_gateway

FIRST_KEY = re.compile(r"Created the first API key \(shown only once, keep it\): (\S+)")
KEY_SHAPE = re.compile(r"^[0-9a-f]{32}\.[A-Za-z0-9]{16}$")
ENV = {"GLMSERVE_METRICS_REQUIRE_KEY": "true"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


def models(upstream: FakeUpstream) -> dict[str, dict[str, object]]:
    deployment = {"kind": "openai", "base_url": upstream.base_url, "model": "ok", "health_interval_s": 0}
    return {"glm-4.6": {"deployments": [deployment]}}


@pytest.fixture(scope="module")
def fresh(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GlmServe, Path]]:
    tmp = tmp_path_factory.mktemp("first-serve")
    with start_gateway(tmp, models(upstream), "unused", ENV, static_key=None, name="first") as server:
        printed = FIRST_KEY.findall(server.log_tail(200_000))
        assert len(printed) == 1, f"one key printed on the first serve, got {printed}"
        server.api_key = printed[0]
        yield server, tmp


def test_the_first_serve_prints_one_admin_key(fresh: tuple[GlmServe, Path]) -> None:
    server, _ = fresh
    assert KEY_SHAPE.match(server.api_key), server.api_key
    assert chat(server, server.api_key, model="glm-4.6").status_code == 200
    with admin(server) as http:
        made = http.post("/admin/keys", json={"name": "made-by-the-first-key"})
        listed = http.get("/admin/keys").json()["data"]
    assert made.status_code == 201, "the printed key is an admin key"
    roles = {k["name"]: k["role"] for k in listed}
    assert roles == {"default": "admin", "made-by-the-first-key": "user"}
    assert server.secret not in server.log_tail(200_000).replace(server.api_key, ""), (
        "printed only in that line"
    )


def test_metrics_need_an_admin_key_when_metrics_require_key(fresh: tuple[GlmServe, Path]) -> None:
    server, _ = fresh
    user, _ = create_key(server, name="no-metrics-for-me")
    anonymous = httpx.get(f"{server.root}/metrics", timeout=10)
    as_user = httpx.get(f"{server.root}/metrics", headers={"Authorization": f"Bearer {user}"}, timeout=10)
    as_admin = httpx.get(
        f"{server.root}/metrics", headers={"Authorization": f"Bearer {server.api_key}"}, timeout=10
    )
    assert (anonymous.status_code, error_code(anonymous)) == (401, "1001")
    assert (as_user.status_code, error_code(as_user)) == (403, "1220")
    assert as_admin.status_code == 200 and "glmserve_requests_total" in as_admin.text


def test_metrics_are_open_by_default(server: GlmServe) -> None:
    response = httpx.get(f"{server.root}/metrics", timeout=10)
    assert response.status_code == 200 and "glmserve_requests_total" in response.text
    assert not FIRST_KEY.search(server.log_tail(200_000)), "a server with a static key creates no key"


def test_a_second_serve_prints_no_key(fresh: tuple[GlmServe, Path], upstream: FakeUpstream) -> None:
    first, tmp = fresh
    with start_gateway(tmp, models(upstream), "unused", ENV, static_key=None, name="second") as again:
        assert not FIRST_KEY.search(again.log_tail(200_000)), "the key is printed once only"
        assert chat(again, first.api_key, model="glm-4.6").status_code == 200
        with admin(again, first.api_key) as http:
            names = [k["name"] for k in http.get("/admin/keys").json()["data"]]
        with admin(first) as http:
            assert names == [k["name"] for k in http.get("/admin/keys").json()["data"]]
        assert names.count("default") == 1
