"""The Authorization values real clients send (API.md §1.3-1.4): all accepted, forgeries refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .credentials import new_secret, new_zhipu_key, now_ms, valid_jwt, zhipu_jwt
from .server_process import GlmServe
from .wire_schema import assert_error

ONE_TOKEN: dict[str, Any] = {
    "model": "glm-4.5-flash",
    "messages": [{"role": "user", "content": "hi"}],
    "temperature": 0,
    "max_tokens": 1,
}


@pytest.fixture(scope="module")
def bare(server: GlmServe) -> Iterator[httpx.Client]:
    """HTTP with no default credentials; each test sets its own Authorization header."""
    with httpx.Client(base_url=server.paas_url, timeout=120) as raw:
        yield raw


def post(bare: httpx.Client, authorization: str) -> httpx.Response:
    return bare.post("chat/completions", json=ONE_TOKEN, headers={"Authorization": authorization})


ACCEPTED = {
    "bearer-raw-key": lambda key: f"Bearer {key}",  # openai, zhipuai >= 2.1, zai-sdk
    "lowercase-bearer": lambda key: f"bearer {key}",
    "bare-raw-key": lambda key: key,  # zhipuai 2.0.1.20240429
    "bearer-jwt": lambda key: f"Bearer {valid_jwt(key)}",  # zhipuai/zai with disable_token_cache=False
    "bare-jwt": lambda key: valid_jwt(key),  # zhipuai 2.0.1
}


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_accepted_authorization(bare: httpx.Client, server: GlmServe, name: str) -> None:
    response = post(bare, ACCEPTED[name](server.api_key))

    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["role"] == "assistant"


def forged_jwt(server: GlmServe) -> str:
    now = now_ms()
    return zhipu_jwt(server.api_key, exp_ms=now + 60_000, timestamp_ms=now, secret=new_secret())


REFUSED = {
    # name: (credential builder, the Zhipu code). The README: 1002 an invalid key, 1004 a JWT whose
    # signature does not verify (a token naming a key that does not exist has nothing to verify with).
    "jwt-bad-signature": (forged_jwt, "1004"),
    "unknown-key-id": (lambda server: new_zhipu_key(), "1002"),
    "jwt-for-unknown-key": (lambda server: valid_jwt(new_zhipu_key()), "1004"),
    "garbage": (lambda server: "not-a-key", "1002"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_authorization(bare: httpx.Client, server: GlmServe, name: str) -> None:
    build, code = REFUSED[name]
    sent = build(server)

    response = post(bare, f"Bearer {sent}")

    assert response.status_code == 401, response.text
    body = response.json()
    assert_error(body)
    assert body["error"]["code"] == code, body
    assert response.headers.get("x-request-id")
    assert sent not in response.text and server.secret not in response.text
