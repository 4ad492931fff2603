"""auth.py: the API.md §1.3 auth matrix and the §1.4 Zhipu JWT, against a real key store."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from zhipuai.core._jwt_token import generate_token

from glmserve.accounting.auth import Authenticator, Principal
from glmserve.errors import AuthError
from glmserve.store.db import open_store
from glmserve.store.keys import KeyStore, load_or_create_master_key

STATIC_ZHIPU = "0123456789abcdef0123456789abcdef.StaticSecret0001"
HEADERS = {"alg": "HS256", "sign_type": "SIGN"}

# (full key, key id, secret) -> Authorization header
MakeHeader = Callable[[str, str, str], str | None]


def now_ms() -> int:
    return round(time.time() * 1000)


def zhipu_jwt(key_id: str, secret: str, *, exp_ms: int | None = None, alg: str = "HS256") -> str:
    """A token built exactly the way zhipuai 2.1.5 builds it (core/_jwt_token.py)."""
    now = now_ms()
    payload = {"api_key": key_id, "exp": now + 210_000 if exp_ms is None else exp_ms, "timestamp": now}
    return jwt.encode(payload, secret, algorithm=alg, headers={**HEADERS, "alg": alg})


def run_auth(
    tmp_path: Path,
    make_header: MakeHeader,
    *,
    static: str | None = None,
    revoke: bool = False,
    clock: Callable[[], float] = time.time,
) -> tuple[Principal | AuthError, str]:
    """Create a key named "ci", authenticate the header built from it; return (outcome, full key)."""

    async def main() -> tuple[Principal | AuthError, str]:
        store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
        try:
            keys = KeyStore(store, load_or_create_master_key(tmp_path))
            record, full = await keys.create("ci")
            if revoke:
                await keys.revoke(record.id)
            header = make_header(full, *full.split("."))
            try:
                return await Authenticator(keys, static, clock=clock).authenticate(header), full
            except AuthError as exc:
                return exc, full
        finally:
            await store.close()

    return asyncio.run(main())


def accepted(
    tmp_path: Path,
    make_header: MakeHeader,
    static: str | None = None,
    clock: Callable[[], float] = time.time,
) -> tuple[Principal, str]:
    outcome, full = run_auth(tmp_path, make_header, static=static, clock=clock)
    assert isinstance(outcome, Principal), outcome
    return outcome, full


def rejected(
    tmp_path: Path,
    make_header: MakeHeader,
    static: str | None = None,
    revoke: bool = False,
    clock: Callable[[], float] = time.time,
) -> str:
    """The Zhipu code of the rejection, after checking its message leaks nothing."""
    outcome, full = run_auth(tmp_path, make_header, static=static, revoke=revoke, clock=clock)
    assert isinstance(outcome, AuthError), outcome
    shown = f"{outcome} {outcome.message} {json.dumps(outcome.body())} {outcome!r}"
    header = make_header(full, *full.split(".")) or ""
    for leak in (full, full.split(".")[1], STATIC_ZHIPU, STATIC_ZHIPU.split(".")[1]):
        assert leak not in shown
    if len(header) > 8:
        assert header.split()[-1] not in shown
    assert outcome.status == 401
    return outcome.code


@pytest.mark.parametrize(
    "make_header",
    [
        lambda full, i, s: f"Bearer {full}",
        lambda full, i, s: f"bearer {full}",
        lambda full, i, s: full,  # zhipuai 2.0.1.20240429
        lambda full, i, s: f"Bearer {zhipu_jwt(i, s)}",
        lambda full, i, s: zhipu_jwt(i, s),  # zhipuai 2.0.1: no Bearer prefix
        lambda full, i, s: f"BEARER   {generate_token(full)}",  # the SDK's own signer
    ],
    ids=["raw", "raw-lower-bearer", "raw-no-prefix", "jwt", "jwt-no-prefix", "jwt-from-sdk"],
)
def test_store_keys_are_accepted_raw_and_as_jwt(tmp_path: Path, make_header: MakeHeader) -> None:
    principal, full = accepted(tmp_path, make_header)
    assert principal == Principal(key_id=full.split(".")[0], name="ci")


@pytest.mark.parametrize(
    ("make_header", "code"),
    [
        (lambda full, i, s: None, "1001"),
        (lambda full, i, s: "", "1001"),
        (lambda full, i, s: "Bearer ", "1001"),
        (lambda full, i, s: "Bearer", "1001"),
        (lambda full, i, s: f"Bearer {i}.{s[::-1]}", "1002"),
        (lambda full, i, s: f"Bearer {'0' * 32}.{s}", "1002"),
        (lambda full, i, s: f"Bearer {i}", "1002"),
        (lambda full, i, s: "Bearer sk-not-a-key", "1002"),
        (lambda full, i, s: "Bearer a.b.c", "1002"),
        (lambda full, i, s: "Bearer !!.??.**", "1002"),
        (lambda full, i, s: f"Bearer {zhipu_jwt(i, s, alg='HS512')}", "1002"),
        (lambda full, i, s: f"Bearer {jwt.encode({'api_key': i}, s, algorithm='HS256')}", "1002"),
        (lambda full, i, s: f"Bearer {zhipu_jwt(i, s, exp_ms=now_ms() - 60_000)}", "1003"),
        (lambda full, i, s: f"Bearer {zhipu_jwt(i, s, exp_ms=int(time.time()) + 210)}", "1003"),
        (lambda full, i, s: f"Bearer {zhipu_jwt(i, 'WrongSecret12345')}", "1004"),
        (lambda full, i, s: f"Bearer {zhipu_jwt('0' * 32, s)}", "1004"),
    ],
    ids=[
        "none",
        "empty",
        "bearer-only",
        "bearer-stripped",
        "raw-wrong-secret",
        "raw-unknown-id",
        "id-only",
        "opaque-without-static",
        "garbage-3-part",
        "3-part-not-base64",
        "jwt-other-alg",
        "jwt-no-exp",
        "jwt-expired",
        "jwt-exp-in-seconds",
        "jwt-bad-signature",
        "jwt-unknown-id",
    ],
)
def test_rejections_carry_the_zhipu_code(tmp_path: Path, make_header: MakeHeader, code: str) -> None:
    assert rejected(tmp_path, make_header) == code


def test_revoked_key_is_rejected_raw_and_as_jwt(tmp_path: Path) -> None:
    assert rejected(tmp_path, lambda full, i, s: f"Bearer {full}", revoke=True) == "1002"
    assert rejected(tmp_path / "j", lambda full, i, s: zhipu_jwt(i, s), revoke=True) == "1004"


def test_expiry_is_in_milliseconds_with_five_seconds_leeway(tmp_path: Path) -> None:
    exp_ms = 1_700_000_000_000
    token: MakeHeader = lambda full, i, s: zhipu_jwt(i, s, exp_ms=exp_ms)  # noqa: E731
    accepted(tmp_path, token, clock=lambda: (exp_ms + 4_000) / 1000)
    assert rejected(tmp_path / "late", token, clock=lambda: (exp_ms + 5_000) / 1000) == "1003"


def test_static_opaque_key(tmp_path: Path) -> None:
    static = "sk-local-test"
    principal, _ = accepted(tmp_path, lambda full, i, s: f"Bearer {static}", static=static)
    assert principal == Principal("static", "static", "admin")
    assert rejected(tmp_path / "x", lambda full, i, s: "Bearer sk-local-tesT", static=static) == "1002"


def test_static_key_does_not_shut_out_store_keys(tmp_path: Path) -> None:
    principal, full = accepted(tmp_path, lambda full, i, s: f"Bearer {full}", static="sk-local-test")
    assert principal.key_id == full.split(".")[0]


def test_static_zhipu_key_is_accepted_raw_and_as_jwt(tmp_path: Path) -> None:
    static_id, static_secret = STATIC_ZHIPU.split(".")
    expected = Principal(static_id, "static", "admin")
    signed_header: MakeHeader = lambda full, i, s: f"Bearer {zhipu_jwt(static_id, static_secret)}"  # noqa: E731
    raw, _ = accepted(tmp_path, lambda full, i, s: f"Bearer {STATIC_ZHIPU}", static=STATIC_ZHIPU)
    signed, _ = accepted(tmp_path / "j", signed_header, static=STATIC_ZHIPU)
    assert raw == signed == expected
    forged: MakeHeader = lambda full, i, s: f"Bearer {zhipu_jwt(static_id, s)}"  # noqa: E731
    assert rejected(tmp_path / "f", forged, static=STATIC_ZHIPU) == "1004"
    wrong_raw: MakeHeader = lambda full, i, s: f"Bearer {static_id}.{s}"  # noqa: E731
    assert rejected(tmp_path / "w", wrong_raw, static=STATIC_ZHIPU) == "1002"
