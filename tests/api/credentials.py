"""Zhipu-format API keys and the JWTs the Zhipu SDKs sign with them (API.md §1.3-1.4)."""

from __future__ import annotations

import secrets
import string
import time

import jwt

_ALNUM = string.ascii_letters + string.digits


def new_secret() -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(16))


def new_zhipu_key() -> str:
    """`<32 lowercase hex>.<16 alphanumerics>`, the shape of a BigModel console key."""
    return f"{secrets.token_hex(16)}.{new_secret()}"


def split_key(key: str) -> tuple[str, str]:
    key_id, secret = key.split(".", 1)
    return key_id, secret


def now_ms() -> int:
    return int(time.time() * 1000)


def zhipu_jwt(key: str, *, exp_ms: int, timestamp_ms: int, secret: str | None = None) -> str:
    """Sign like zhipuai's `_jwt_token.generate_token`: HS256, `sign_type: SIGN`, times in ms.

    `secret` overrides the key's own secret, to forge a token with a bad signature.
    """
    key_id, key_secret = split_key(key)
    payload = {"api_key": key_id, "exp": exp_ms, "timestamp": timestamp_ms}
    headers = {"alg": "HS256", "sign_type": "SIGN"}
    return jwt.encode(payload, secret or key_secret, algorithm="HS256", headers=headers)


def valid_jwt(key: str) -> str:
    now = now_ms()
    return zhipu_jwt(key, exp_ms=now + 210_000, timestamp_ms=now)


def expired_jwt(key: str) -> str:
    now = now_ms()
    return zhipu_jwt(key, exp_ms=now - 60_000, timestamp_ms=now - 270_000)
