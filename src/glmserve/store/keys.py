"""API keys in the Zhipu format ``<32 hex id>.<16 alnum secret>``, kept in the store.

The secret is never stored in the clear. Each row keeps it twice:

- ``secret_hash``: hex SHA-256, to check a raw ``id.secret`` key in constant time;
- ``secret_enc``: AES-GCM under the master key (``data_dir/master.key``), base64 of
  nonce + ciphertext with the key id as associated data. A Zhipu JWT is an HMAC keyed with
  the secret itself, so verifying one needs the secret back.

Rotation gives a key a new secret and keeps the old one (``prev_secret_*``) valid until
``prev_valid_until``, so clients can switch over. The full key is shown once, by
``KeyStore.create`` or ``KeyStore.rotate``; nothing here logs a secret.

Every change to an existing key (revoke, rotate, update) counts up ``key_epoch`` in the same
transaction, and tells this process's listeners (``on_change``) once committed: a cache of
verified keys drops itself at once here, and on other replicas when their poll of ``epoch``
sees the new count.
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
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from glmserve.errors import GlmError, Unavailable
from glmserve.store.db import Store
from glmserve.store.key_records import (
    NO_LIMITS,
    RECORD_COLUMNS,
    UPDATABLE_COLUMNS,
    ActiveKey,
    ApiKeyRecord,
    KeyPolicy,
    Role,
    record_from_row,
)

__all__ = ["ActiveKey", "ApiKeyRecord", "KeyPolicy", "KeyStore", "hash_secret", "load_or_create_master_key"]

MASTER_KEY_FILE = "master.key"
MASTER_KEY_BYTES = 32
SECRET_LENGTH = 16
_SECRET_ALPHABET = string.ascii_letters + string.digits
_NONCE_BYTES = 12
_KEY_ID = re.compile(r"[0-9a-f]{32}")


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


def load_or_create_master_key(data_dir: Path, file: Path | None = None) -> bytes:
    """Read ``file`` (default ``data_dir/master.key``), creating it (32 random bytes, mode 0600).

    Replicas sharing one database must share this key (``master_key_file``).

    The file is written under a temporary name and hard-linked into place, so no reader ever
    sees a partial key and two processes starting together end up with the same one.
    """
    path = file or data_dir / MASTER_KEY_FILE
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
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
        self._listeners: builtins.list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every committed change to a key made by this process."""
        self._listeners.append(listener)

    async def epoch(self) -> int:
        """The count of key changes so far (any process); moves whenever a key changes."""
        try:
            return int(await self._store.scalar("SELECT n FROM key_epoch WHERE id = 1"))
        except OperationalError as exc:  # locked or unreachable, as in ``_transaction``
            raise Unavailable("key store unavailable") from exc

    async def create(
        self,
        name: str | None = None,
        *,
        policy: KeyPolicy = NO_LIMITS,
        role: Role = "user",
        expires_at: float | None = None,
        created_by: str | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        """Make a key; return its record and the full ``id.secret`` key (shown only now)."""
        key_id, secret = new_key()
        record = ApiKeyRecord(
            id=key_id,
            name=name,
            created_at=time.time(),
            revoked_at=None,
            role=role,
            expires_at=expires_at,
            policy=policy,
            created_by=created_by,
        )
        columns = {
            "id": key_id,
            "name": name,
            "secret_hash": hash_secret(secret),
            "secret_enc": self._encrypt(key_id, secret),
            "created_at": record.created_at,
            "role": role,
            "expires_at": expires_at,
            "created_by": created_by,
            **policy.columns(),
        }
        names = ", ".join(columns)
        values = ", ".join(f":{c}" for c in columns)
        async with self._transaction(write=True) as conn:
            await conn.execute(text(f"INSERT INTO api_keys ({names}) VALUES ({values})"), columns)
        return record, f"{key_id}.{secret}"

    async def list(self, key_id: str | None = None) -> builtins.list[ApiKeyRecord]:
        """All keys (or only ``key_id``), revoked ones included, oldest first."""
        where = "" if key_id is None else " WHERE id = :id"
        async with self._transaction() as conn:
            result = await conn.execute(
                text(f"SELECT {RECORD_COLUMNS} FROM api_keys{where} ORDER BY created_at, id"), {"id": key_id}
            )
            return [record_from_row(row) for row in result.mappings()]

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        """The key ``key_id``, revoked or not, else None."""
        found = await self.list(key_id) if is_key_id(key_id) else []
        return found[0] if found else None

    async def revoke(self, key_id: str) -> bool:
        """Revoke an active key; False if there is no such active key."""
        async with self._transaction(write=True) as conn:
            result = await conn.execute(
                text("UPDATE api_keys SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL"),
                {"now": time.time(), "id": key_id},
            )
            changed = result.rowcount == 1
            if changed:
                await _count_change(conn)
        if changed:
            self._changed()
        return changed

    async def rotate(self, key_id: str, grace_s: float) -> tuple[ApiKeyRecord, str] | None:
        """A new secret for the active key ``key_id``; the old one keeps working for ``grace_s``."""
        if not is_key_id(key_id):  # never a key; and its text would not encrypt (found by fuzzing)
            return None
        secret = new_key()[1]
        async with self._transaction(write=True) as conn:
            result = await conn.execute(
                text(
                    "UPDATE api_keys SET prev_secret_hash = secret_hash, prev_secret_enc = secret_enc,"
                    " prev_valid_until = :until, secret_hash = :hash, secret_enc = :enc"
                    " WHERE id = :id AND revoked_at IS NULL"
                ),
                {
                    "until": time.time() + grace_s,
                    "hash": hash_secret(secret),
                    "enc": self._encrypt(key_id, secret),
                    "id": key_id,
                },
            )
            if result.rowcount == 1:
                await _count_change(conn)
        if result.rowcount != 1:
            return None
        self._changed()
        record = await self.get(key_id)
        return None if record is None else (record, f"{key_id}.{secret}")

    async def update(self, key_id: str, changes: dict[str, Any]) -> ApiKeyRecord | None:
        """Set some of ``UPDATABLE_COLUMNS`` of the active key ``key_id``; None if there is none."""
        unknown = set(changes) - set(UPDATABLE_COLUMNS)
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        if changes:
            assignments = ", ".join(f"{c} = :{c}" for c in changes)  # names from the allow-list
            async with self._transaction(write=True) as conn:
                result = await conn.execute(
                    text(f"UPDATE api_keys SET {assignments} WHERE id = :id AND revoked_at IS NULL"),
                    {**changes, "id": key_id},
                )
                if result.rowcount == 1:
                    await _count_change(conn)
            if result.rowcount != 1:
                return None
            self._changed()
        record = await self.get(key_id)
        return record if record is not None and record.revoked_at is None else None

    async def count(self) -> int:
        """How many keys exist, revoked or not."""
        async with self._transaction() as conn:
            result = await conn.execute(text("SELECT COUNT(*) FROM api_keys"))
            return int(result.scalar_one())

    async def get_active(self, key_id: str) -> ActiveKey | None:
        """The non-revoked key ``key_id`` with its secrets (expired or not), else None."""
        if not is_key_id(key_id):
            return None
        async with self._transaction() as conn:
            result = await conn.execute(
                text(
                    f"SELECT {RECORD_COLUMNS}, secret_hash, secret_enc, prev_secret_hash, prev_secret_enc"
                    " FROM api_keys WHERE id = :id AND revoked_at IS NULL"
                ),
                {"id": key_id},
            )
            row = result.mappings().one_or_none()
        if row is None:
            return None
        record = record_from_row(row)
        secret = self._decrypt(key_id, str(row["secret_enc"]))
        previous = None
        if row["prev_secret_enc"] is not None and (record.prev_valid_until or 0) > time.time():
            previous = (str(row["prev_secret_hash"]), self._decrypt(key_id, str(row["prev_secret_enc"])))
        return ActiveKey(record, str(row["secret_hash"]), secret, previous)

    async def get_secret(self, key_id: str) -> tuple[str, str] | None:
        """``(secret_hash, secret)`` of the active key ``key_id``, else None."""
        key = await self.get_active(key_id)
        return None if key is None else (key.secret_hash, key.secret)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    @contextlib.asynccontextmanager
    async def _transaction(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._store.write() if write else self._store.engine.begin() as conn:
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


async def _count_change(conn: AsyncConnection) -> None:
    await conn.execute(text("UPDATE key_epoch SET n = n + 1 WHERE id = 1"))
