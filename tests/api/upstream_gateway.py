"""A second glmserve process configured as a gateway in front of upstreams, for the upstream tests."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from . import server_process
from .credentials import new_zhipu_key
from .fake_upstream import FakeUpstream
from .server_process import GlmServe

UPSTREAM_KEY_ENV = "GATEWAY_TEST_UPSTREAM_KEY"


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Path):
        value = str(value)
    return json.dumps(value)


def model_table(models: dict[str, dict[str, Any]]) -> str:
    """``{public name: {field: value, "deployments": [...]}}`` as the TOML the README documents."""
    out = []
    for name, fields in models.items():
        out.append("[[models]]")
        out.append(f"name = {toml_value(name)}")
        out += [f"{key} = {toml_value(value)}" for key, value in fields.items()]
        out.append("")
    return "\n".join(out)


def start_gateway(
    tmp: Path,
    models: dict[str, dict[str, Any]],
    upstream_key: str,
    env: dict[str, str] | None = None,
    *,
    static_key: str | None = "new",
    name: str = "gateway",
) -> GlmServe:
    """A glmserve serving ``models`` from ``tmp/data``; ``static_key`` "new" makes one, None none."""
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "gateway.toml"
    config.write_text(model_table(models), encoding="utf-8")
    extra_env = {UPSTREAM_KEY_ENV: upstream_key} | (env or {})
    key = new_zhipu_key() if static_key == "new" else static_key
    return server_process.start(tmp / "data", tmp / f"{name}.log", key, extra_env, ["--config", str(config)])


def ask(model: str, **extra: Any) -> dict[str, Any]:
    """A one-message chat body for ``model``."""
    return {"model": model, "messages": [{"role": "user", "content": "say hello"}], **extra}


@contextlib.contextmanager
def gateway_client(gateway: GlmServe, fake: FakeUpstream, timeout_s: float) -> Iterator[httpx.Client]:
    """Raw HTTP on the gateway's API root; afterwards no upstream request may be left open."""
    headers = {"Authorization": f"Bearer {gateway.api_key}"}
    with httpx.Client(base_url=gateway.paas_url, headers=headers, timeout=timeout_s) as client:
        yield client
    assert fake.wait_idle(5), "an upstream request was left open"
