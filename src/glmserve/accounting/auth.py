"""Who is calling: the ``Authorization`` header to a ``Principal`` (API.md §1.3, §1.4).

After an optional case-insensitive ``Bearer `` prefix the credential is one of:

- a Zhipu JWT (3 dot-separated parts): HS256 over ``header.payload`` keyed with the secret of
  the key named by ``payload.api_key``; ``exp`` is in milliseconds;
- a raw Zhipu key ``id.secret`` (2 parts), checked against the stored hash;
- anything else, an opaque key (``sk-...``), accepted only if it is the static key.

The static key (``GLMSERVE_API_KEY``) is always accepted as sent and acts as an admin key
without limits; if it has the ``id.secret`` shape, JWTs signed with its secret are accepted
too. A store key is refused once revoked or past its ``expires_at``; after a rotation its old
secret keeps working (raw or as a JWT) until the grace period ends. A verified key is kept in a
``KeyCache``, which every replica drops within a second of any change to any key (revocation,
rotation, limits), so a stored key costs no database round trip. Every comparison with a secret
is constant-time, and no error message or log line carries a key, a secret or a token.

While the database cannot be reached (a restart), a key looked up successfully within the last
``STALE_IF_ERROR_S`` is served from memory ("stale if error"), so clients keep working through a
restart of a few seconds; any other key gets 503 ``Retry-After: 1``. A revocation made in the
last minute before an outage is therefore seen once the database answers again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from glmserve.accounting.key_cache import KeyCache
from glmserve.errors import InvalidToken, MissingAuth, TokenExpired, TokenVerifyFailed, Unavailable
from glmserve.store.key_records import NO_LIMITS, ActiveKey, KeyPolicy, Role
from glmserve.store.keys import KeyStore, hash_secret

EXP_LEEWAY_MS = 5000
STATIC_NAME = "static"
_MAX_CREDENTIAL = 4096  # a Zhipu JWT is ~250 chars; bounds the JSON we agree to parse
_BEARER = "bearer "
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_SHA256_BYTES = 32
STALE_IF_ERROR_S = 60.0
_REMEMBERED = 10_000


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str | None
    role: Role = "user"
    policy: KeyPolicy = NO_LIMITS

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def of(cls, key: ActiveKey) -> Principal:
        record = key.record
        return cls(record.id, record.name, record.role, record.policy)


@dataclass(frozen=True)
class _Jwt:
    signing_input: bytes
    signature: bytes
    key_id: str
    exp_ms: float


class Authenticator:
    def __init__(
        self,
        keys: KeyStore,
        static_key: str | None,
        *,
        cache: KeyCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._cache = cache
        self._clock = clock
        self._static = (static_key or "").strip() or None
        self._static_pair: tuple[str, str] | None = None
        self._static_principal = Principal(STATIC_NAME, STATIC_NAME, "admin")
        self._recent: OrderedDict[str, tuple[float, ActiveKey]] = OrderedDict()
        if self._static is not None and self._static.count(".") == 1:
            key_id, secret = self._static.split(".")
            self._static_pair = (key_id, secret)
            self._static_principal = Principal(key_id, STATIC_NAME, "admin")

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

    async def principal(self, key_id: str) -> Principal | None:
        """The principal of an active key by its id, for work a key queued earlier (jobs)."""
        if key_id == self._static_principal.key_id and self._static is not None:
            return self._static_principal
        key = await self._active(key_id)
        if key is None or key.record.expired(self._clock()):
            return None
        return Principal.of(key)

    async def _active(self, key_id: str, *, fresh: bool = False) -> ActiveKey | None:
        """The key from the cache (unless ``fresh``) or the database; while that is unreachable,
        as last seen (briefly)."""
        if not fresh and self._cache is not None and (cached := self._cache.get(key_id)) is not None:
            return cached
        try:
            key = await (self._cache.fetch(key_id) if self._cache else self._keys.get_active(key_id))
        except (Unavailable, SQLAlchemyError, OSError) as exc:
            if self._cache is not None and (known := self._cache.remembered(key_id, STALE_IF_ERROR_S)):
                return known
            seen = self._recent.get(key_id)
            if seen is not None and time.monotonic() - seen[0] < STALE_IF_ERROR_S:
                return seen[1]
            raise Unavailable("key store unavailable; retry shortly", retry_after=1) from exc
        if key is None:
            self._recent.pop(key_id, None)
            return None
        self._recent[key_id] = (time.monotonic(), key)
        self._recent.move_to_end(key_id)
        if len(self._recent) > _REMEMBERED:
            self._recent.popitem(last=False)
        return key

    async def _from_raw_key(self, key_id: str, secret: str) -> Principal:
        digest = hash_secret(secret)
        key = await self._active(key_id)
        if key is not None and not _digest_matches(key, digest) and self._cache is not None:
            key = await self._active(key_id, fresh=True)  # rotated on another replica just now?
        if key is None or not _digest_matches(key, digest):
            raise InvalidToken("invalid API key")
        return self._unexpired(key)

    def _unexpired(self, key: ActiveKey) -> Principal:
        if key.record.expired(self._clock()):
            raise TokenExpired("API key expired")
        return Principal.of(key)

    async def _from_jwt(self, token: _Jwt) -> Principal:
        found = await self._signing_secrets(token.key_id)
        if found is not None and not _signed_by(token, found[1]) and found[0] is not None and self._cache:
            found = await self._signing_secrets(token.key_id, fresh=True)  # rotated elsewhere just now?
        if found is None or not _signed_by(token, found[1]):
            raise TokenVerifyFailed("token verification failed")
        key = found[0]
        if token.exp_ms <= self._clock() * 1000 - EXP_LEEWAY_MS:
            raise TokenExpired("token expired")
        return self._static_principal if key is None else self._unexpired(key)

    async def _signing_secrets(
        self, key_id: str, *, fresh: bool = False
    ) -> tuple[ActiveKey | None, list[str]] | None:
        """The key (None: the static one) and the secrets a token for it may be signed with."""
        if self._static_pair is not None and _equal(key_id, self._static_pair[0]):
            return None, [self._static_pair[1]]
        key = await self._active(key_id, fresh=fresh)
        if key is None:
            return None
        return key, [secret for _, secret in key.secrets()]


def _digest_matches(key: ActiveKey, digest: str) -> bool:
    # Compare with every candidate, so the time taken says nothing about which matched.
    matches = [_equal(digest, stored) for stored, _ in key.secrets()]
    return any(matches)


def _signed_by(token: _Jwt, secrets: list[str]) -> bool:
    matches = [hmac.compare_digest(_hmac(secret, token.signing_input), token.signature) for secret in secrets]
    return any(matches)


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


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
