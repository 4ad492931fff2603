"""`glmserve keys create|list|revoke` against the running server's data dir."""

from __future__ import annotations

import re
from typing import Any

import openai
import pytest
from openai import OpenAI
from zhipuai import ZhipuAI

from .accounts import refused_within
from .server_process import GlmServe

KEY_SHAPE = re.compile(r"^[0-9a-f]{32}\.[A-Za-z0-9]{16}$")
ONE_TOKEN: dict[str, Any] = {
    "model": "glm-4.5-flash",
    "messages": [{"role": "user", "content": "hi"}],
    "temperature": 0,
    "max_tokens": 1,
}


def sdk(server: GlmServe, key: str) -> OpenAI:
    return OpenAI(api_key=key, base_url=server.paas_url, max_retries=0, timeout=120)


def test_created_key_works_until_revoked(server: GlmServe) -> None:
    created = server.cli("keys", "create", "--name", "api-suite")
    lines = created.stdout.splitlines()
    assert len(lines) == 1, f"keys create must print exactly one line: {created.stdout!r}"
    key = lines[0].strip()
    assert KEY_SHAPE.match(key), f"not a Zhipu-format key: {key!r}"
    key_id, secret = key.split(".")

    assert sdk(server, key).chat.completions.create(**ONE_TOKEN).choices
    zhipu_jwt = ZhipuAI(
        api_key=key, base_url=server.paas_url.rstrip("/"), max_retries=0, disable_token_cache=False
    )
    assert zhipu_jwt.chat.completions.create(**ONE_TOKEN).choices

    listed = server.cli("keys", "list").stdout
    assert key_id in listed
    assert secret not in listed, "keys list must never show a secret"

    server.cli("keys", "revoke", key_id)  # another process: the server's key cache drops it within 1 s

    assert refused_within(server, key).status_code == 401
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk(server, key).chat.completions.create(**ONE_TOKEN)
    assert caught.value.status_code == 401
    assert secret not in caught.value.response.text


def test_revoking_one_key_leaves_others_working(server: GlmServe, client: OpenAI) -> None:
    doomed = server.cli("keys", "create", "--name", "doomed").stdout.strip()
    kept = server.cli("keys", "create", "--name", "kept").stdout.strip()

    server.cli("keys", "revoke", doomed.split(".")[0])

    assert sdk(server, kept).chat.completions.create(**ONE_TOKEN).choices
    assert client.chat.completions.create(**ONE_TOKEN).choices  # the static GLMSERVE_API_KEY
