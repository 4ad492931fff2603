"""Who is calling: the ``Authorization`` header to a ``Principal`` (API.md §1.3, §1.4).

After an optional case-insensitive ``Bearer `` prefix the credential is one of:

- a Zhipu JWT (3 dot-separated parts): HS256 over ``header.payload`` keyed with the secret of
  the key named by ``payload.api_key``; ``exp`` is in milliseconds;
- a raw Zhipu key ``id.secret`` (2 parts), checked against the stored hash;
- anything else, an opaque key (``sk-...``), accepted only if it is the static key.

The static key (``GLMSERVE_API_KEY``) is always accepted as sent; if it has the ``id.secret``
shape, JWTs signed with its secret are accepted too. Every comparison with a secret is
constant-time, and no error message or log line carries a key, a secret or a token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from glmserve.errors import InvalidToken, MissingAuth, TokenExpired, TokenVerifyFailed
from glmserve.store.keys import KeyStore, hash_secret

EXP_LEEWAY_MS = 5000
STATIC_NAME = "static"
_MAX_CREDENTIAL = 4096  # a Zhipu JWT is ~250 chars; bounds the JSON we agree to parse
_BEARER = "bearer "
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_SHA256_BYTES = 32


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str | None


@dataclass(frozen=True)
class _Jwt:
    signing_input: bytes
    signature: bytes
    key_id: str
    exp_ms: float


class Authenticator:
    def __init__(
        self, keys: KeyStore, static_key: str | None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._keys = keys
        self._clock = clock
        self._static = (static_key or "").strip() or None
        self._static_pair: tuple[str, str] | None = None
        self._static_principal = Principal(STATIC_NAME, STATIC_NAME)
        if self._static is not None and self._static.count(".") == 1:
            key_id, secret = self._static.split(".")
            self._static_pair = (key_id, secret)
            self._static_principal = Principal(key_id, STATIC_NAME)

    async def authenticate(self, authorization: str | None) -> Principal:
        credential = _strip_bearer(authorization or "")
        if not credential:
            raise MissingAuth("missing Authorization header")
        if self._static is not None and _equal(credential, self._static):
            return self._static_principal
        if len(credential) > _MAX_CREDENTIAL:
            raise InvalidToken("invalid API key")
        parts = credential.split(".")
        if len(parts) == 3:
            return await self._from_jwt(_parse_jwt(parts))
        if len(parts) == 2:
            return await self._from_raw_key(parts[0], parts[1])
        raise InvalidToken("invalid API key")

    async def _from_raw_key(self, key_id: str, secret: str) -> Principal:
        key = await self._keys.get_active(key_id)
        if key is None or not _equal(hash_secret(secret), key.secret_hash):
            raise InvalidToken("invalid API key")
        return Principal(key.record.id, key.record.name)

    async def _from_jwt(self, token: _Jwt) -> Principal:
        found = await self._signing_secret(token.key_id)
        if found is None:
            raise TokenVerifyFailed("token verification failed")
        principal, secret = found
        expected = hmac.new(secret.encode("utf-8"), token.signing_input, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, token.signature):
            raise TokenVerifyFailed("token verification failed")
        if token.exp_ms <= self._clock() * 1000 - EXP_LEEWAY_MS:
            raise TokenExpired("token expired")
        return principal

    async def _signing_secret(self, key_id: str) -> tuple[Principal, str] | None:
        if self._static_pair is not None and _equal(key_id, self._static_pair[0]):
            return self._static_principal, self._static_pair[1]
        key = await self._keys.get_active(key_id)
        if key is None:
            return None
        return Principal(key.record.id, key.record.name), key.secret


def _strip_bearer(value: str) -> str:
    value = value.strip()
    if value[: len(_BEARER)].lower() == _BEARER:
        return value[len(_BEARER) :].strip()
    if value.lower() == _BEARER.strip():  # "Bearer " whose trailing space the server ate
        return ""
    return value


def _parse_jwt(parts: list[str]) -> _Jwt:
    header_b64, payload_b64, signature_b64 = parts
    header = _json_segment(header_b64)
    if header.get("alg") != "HS256":
        raise InvalidToken("unsupported token algorithm")
    payload = _json_segment(payload_b64)
    key_id, exp = payload.get("api_key"), payload.get("exp")
    if not isinstance(key_id, str) or not key_id:
        raise InvalidToken("malformed token")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise InvalidToken("malformed token")
    signature = _b64url_decode(signature_b64)
    if len(signature) != _SHA256_BYTES:
        raise InvalidToken("malformed token")
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    return _Jwt(signing_input=signing_input, signature=signature, key_id=key_id, exp_ms=exp)


def _json_segment(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url_decode(segment))
    except (ValueError, RecursionError):
        raise InvalidToken("malformed token") from None
    if not isinstance(value, dict):
        raise InvalidToken("malformed token")
    return value


def _b64url_decode(segment: str) -> bytes:
    # Strict: urlsafe_b64decode would silently skip characters outside the alphabet.
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise InvalidToken("malformed token")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _equal(a: str, b: str) -> bool:
    """Constant-time string equality; compare_digest rejects non-ASCII str, so compare bytes."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))
