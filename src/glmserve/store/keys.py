"""API keys in the Zhipu format ``<32 hex id>.<16 alnum secret>``, kept in the store.

The secret is never stored in the clear. Each row keeps it twice:

- ``secret_hash``: hex SHA-256, to check a raw ``id.secret`` key in constant time;
- ``secret_enc``: AES-GCM under the master key (``data_dir/master.key``), base64 of
  nonce + ciphertext with the key id as associated data. A Zhipu JWT is an HMAC keyed with
  the secret itself, so verifying one needs the secret back.

The full key is shown once, by ``KeyStore.create``; nothing here logs a secret.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import hashlib
import os
import re
import secrets
import string
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import RowMapping, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from glmserve.errors import GlmError, Unavailable
from glmserve.store.db import Store

MASTER_KEY_FILE = "master.key"
MASTER_KEY_BYTES = 32
SECRET_LENGTH = 16
_SECRET_ALPHABET = string.ascii_letters + string.digits
_NONCE_BYTES = 12
_KEY_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    name: str | None
    created_at: float
    revoked_at: float | None


@dataclass(frozen=True)
class ActiveKey:
    """An active key with its secret, for verifying a request; ``repr`` leaves the secret out."""

    record: ApiKeyRecord
    secret_hash: str = field(repr=False)
    secret: str = field(repr=False)


def is_key_id(value: str) -> bool:
    return _KEY_ID.fullmatch(value) is not None


def hash_secret(secret: str) -> str:
    # surrogatepass: a header value may carry anything; it must hash, not raise.
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh (key id, secret) pair."""
    key_id = secrets.token_hex(16)
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
    return key_id, secret


def load_or_create_master_key(data_dir: Path) -> bytes:
    """Read ``data_dir/master.key``, creating it (32 random bytes, mode 0600) if absent.

    The file is written under a temporary name and hard-linked into place, so no reader ever
    sees a partial key and two processes starting together end up with the same one.
    """
    path = data_dir / MASTER_KEY_FILE
    if not path.exists():
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _create_key_file(path, os.urandom(MASTER_KEY_BYTES))
    key = path.read_bytes()
    if len(key) != MASTER_KEY_BYTES:
        raise ValueError(f"{path} must hold exactly {MASTER_KEY_BYTES} bytes, it holds {len(key)}")
    return key


def _create_key_file(path: Path, key: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)  # exactly 0600 whatever the umask
            f.write(key)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another process won; use its key
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class KeyStore:
    """API keys in the ``api_keys`` table; SQL errors surface as ``Unavailable`` (503)."""

    def __init__(self, store: Store, master_key: bytes) -> None:
        if len(master_key) != MASTER_KEY_BYTES:
            raise ValueError(f"master key must be {MASTER_KEY_BYTES} bytes")
        self._store = store
        self._aead = AESGCM(master_key)

    async def create(self, name: str | None = None) -> tuple[ApiKeyRecord, str]:
        """Make a key; return its record and the full ``id.secret`` key (shown only now)."""
        key_id, secret = new_key()
        record = ApiKeyRecord(id=key_id, name=name, created_at=time.time(), revoked_at=None)
        async with self._transaction() as conn:
            await conn.execute(
                text(
                    "INSERT INTO api_keys (id, name, secret_hash, secret_enc, created_at, revoked_at)"
                    " VALUES (:id, :name, :secret_hash, :secret_enc, :created_at, NULL)"
                ),
                {
                    "id": key_id,
                    "name": name,
                    "secret_hash": hash_secret(secret),
                    "secret_enc": self._encrypt(key_id, secret),
                    "created_at": record.created_at,
                },
            )
        return record, f"{key_id}.{secret}"

    async def list(self) -> builtins.list[ApiKeyRecord]:
        """All keys, revoked ones included, oldest first."""
        async with self._transaction() as conn:
            result = await conn.execute(
                text("SELECT id, name, created_at, revoked_at FROM api_keys ORDER BY created_at, id")
            )
            return [_record(row) for row in result.mappings()]

    async def revoke(self, key_id: str) -> bool:
        """Revoke an active key; False if there is no such active key."""
        async with self._transaction() as conn:
            result = await conn.execute(
                text("UPDATE api_keys SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL"),
                {"now": time.time(), "id": key_id},
            )
            return result.rowcount == 1

    async def count(self) -> int:
        """How many keys exist, revoked or not."""
        async with self._transaction() as conn:
            result = await conn.execute(text("SELECT COUNT(*) FROM api_keys"))
            return int(result.scalar_one())

    async def get_active(self, key_id: str) -> ActiveKey | None:
        """The active (non-revoked) key ``key_id`` with its secret, else None."""
        if not is_key_id(key_id):
            return None
        async with self._transaction() as conn:
            result = await conn.execute(
                text(
                    "SELECT id, name, created_at, revoked_at, secret_hash, secret_enc FROM api_keys"
                    " WHERE id = :id AND revoked_at IS NULL"
                ),
                {"id": key_id},
            )
            row = result.mappings().one_or_none()
        if row is None:
            return None
        secret = self._decrypt(key_id, str(row["secret_enc"]))
        return ActiveKey(_record(row), str(row["secret_hash"]), secret)

    async def get_secret(self, key_id: str) -> tuple[str, str] | None:
        """``(secret_hash, secret)`` of the active key ``key_id``, else None."""
        key = await self.get_active(key_id)
        return None if key is None else (key.secret_hash, key.secret)

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._store.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            # Locked or unreachable database; the statement text carries no secret.
            raise Unavailable("key store unavailable") from exc

    def _encrypt(self, key_id: str, secret: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode("utf-8"), key_id.encode("ascii"))
        return base64.b64encode(nonce + sealed).decode("ascii")

    def _decrypt(self, key_id: str, blob: str) -> str:
        try:
            raw = base64.b64decode(blob, validate=True)
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], key_id.encode("ascii"))
            return plain.decode("utf-8")
        except (InvalidTag, ValueError):  # ValueError covers bad base64, nonce and UTF-8
            raise GlmError("a stored API key cannot be decrypted; is master.key the right one?") from None


def _record(row: RowMapping) -> ApiKeyRecord:
    revoked_at = row["revoked_at"]
    return ApiKeyRecord(
        id=str(row["id"]),
        name=row["name"],
        created_at=float(row["created_at"]),
        revoked_at=None if revoked_at is None else float(revoked_at),
    )
