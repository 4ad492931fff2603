"""Uploaded and generated files' metadata (``files``, migration ``m008_jobs``); bytes live on disk.

Every read and delete is scoped to the owning key, so another key's file id reads as absent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import text

from glmserve.store.db import Store

_COLUMNS = "id, key_id, created_at, filename, purpose, bytes"


@dataclass(slots=True)
class FileRecord:
    id: str
    key_id: str
    created_at: float
    filename: str
    purpose: str
    bytes: int

    def body(self) -> dict[str, Any]:
        """The OpenAI file object."""
        return {
            "id": self.id, "object": "file", "bytes": self.bytes, "created_at": int(self.created_at),
            "filename": self.filename, "purpose": self.purpose, "status": "processed",
        }  # fmt: skip


def _record(row: Any) -> FileRecord:
    return FileRecord(row.id, row.key_id, float(row.created_at), row.filename, row.purpose, int(row.bytes))


class FileStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def upsert(self, record: FileRecord) -> None:
        """Insert, or replace one with the same id (a batch's output file written again)."""
        sql = (
            f"INSERT INTO files ({_COLUMNS}) VALUES (:id, :key_id, :created_at, :filename, :purpose, :bytes)"
            " ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes"
        )
        async with self._store.write() as conn:
            await conn.execute(text(sql), asdict(record))

    async def get(self, file_id: str, key_id: str) -> FileRecord | None:
        sql = f"SELECT {_COLUMNS} FROM files WHERE id = :id AND key_id = :key_id"
        async with self._store.engine.connect() as conn:
            row = (await conn.execute(text(sql), {"id": file_id, "key_id": key_id})).first()
        return None if row is None else _record(row)

    async def list(self, key_id: str, purpose: str | None, limit: int) -> list[FileRecord]:
        where = "key_id = :key_id" + (" AND purpose = :purpose" if purpose else "")
        sql = f"SELECT {_COLUMNS} FROM files WHERE {where} ORDER BY created_at DESC LIMIT :limit"
        async with self._store.engine.connect() as conn:
            rows = await conn.execute(text(sql), {"key_id": key_id, "purpose": purpose, "limit": limit})
            return [_record(row) for row in rows]

    async def delete(self, file_id: str, key_id: str) -> bool:
        async with self._store.write() as conn:
            result = await conn.execute(
                text("DELETE FROM files WHERE id = :id AND key_id = :key_id"),
                {"id": file_id, "key_id": key_id},
            )
            return bool(result.rowcount)
