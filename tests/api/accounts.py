"""Helpers for the keys, limits and usage suites: the /admin API and one-token chat requests."""

from __future__ import annotations

import time
from typing import Any

import httpx

from .server_process import GlmServe

TIMEOUT_S = 120.0
# A change to a key made elsewhere (another replica, the CLI) takes effect within this (README).
KEY_CHANGE_S = 1.0


def admin(server: GlmServe, key: str | None = None) -> httpx.Client:
    """Raw HTTP on the server root, as ``key`` (default: the static key, an admin)."""
    headers = {"Authorization": f"Bearer {key or server.api_key}"}
    return httpx.Client(base_url=server.root, headers=headers, timeout=TIMEOUT_S)


def create_key(server: GlmServe, **body: Any) -> tuple[str, str]:
    """Create a key through the admin API; return (full key, key id)."""
    with admin(server) as http:
        response = http.post("/admin/keys", json=body)
    assert response.status_code == 201, response.text
    key = response.json()["key"]
    return key, key.split(".")[0]


def chat_body(max_tokens: int = 1, stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "model": "glm-4.5-flash",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": stream,
        **extra,
    }


def chat(server: GlmServe, key: str, **extra: Any) -> httpx.Response:
    with httpx.Client(timeout=TIMEOUT_S) as http:
        return http.post(
            server.paas_url + "chat/completions",
            json=chat_body(**extra),
            headers={"Authorization": f"Bearer {key}"},
        )


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def refused_within(server: GlmServe, key: str, seconds: float = KEY_CHANGE_S) -> httpx.Response:
    """Poll ``GET /models`` as ``key`` until it is refused; fail if it is still accepted after
    ``seconds`` (a key changed by another process reaches this one within that)."""
    started = time.monotonic()
    with httpx.Client(timeout=TIMEOUT_S) as http:
        while True:
            response = http.get(server.paas_url + "models", headers={"Authorization": f"Bearer {key}"})
            if response.status_code != 200:
                return response
            assert time.monotonic() - started < seconds, f"still accepted {seconds} s after the change"
            time.sleep(0.02)
