"""Files: bytes under ``jobs.files_dir`` (default ``data_dir/files``), metadata in the database.

The directory is the one thing replicas must share (a shared volume) besides the database.
A file is written to a temporary name and renamed, so a reader never sees half a file and a
crash leaves no partial one under its id. Uploads are for ``purpose`` ``batch`` only; a batch's
output and error files are ``batch_output`` files of the batch's key.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from pathlib import Path

from glmserve.errors import InvalidField, NotFound
from glmserve.store.files import FileRecord, FileStore

UPLOAD_PURPOSES = ("batch",)


class Files:
    def __init__(self, store: FileStore, directory: Path, max_bytes: int) -> None:
        self.store = store
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, file_id: str) -> Path:
        return self.directory / file_id

    async def upload(self, key_id: str, filename: str, purpose: str, data: bytes) -> FileRecord:
        if purpose not in UPLOAD_PURPOSES:
            raise InvalidField(
                f"purpose '{purpose}' is not supported; use one of {', '.join(UPLOAD_PURPOSES)}",
                param="purpose",
            )
        if len(data) > self.max_bytes:
            raise InvalidField(f"file is larger than {self.max_bytes} bytes", param="file")
        return await self.put(f"file-{secrets.token_hex(12)}", key_id, filename, purpose, data)

    async def put(self, file_id: str, key_id: str, filename: str, purpose: str, data: bytes) -> FileRecord:
        await asyncio.to_thread(self._write, file_id, data)
        record = FileRecord(file_id, key_id, time.time(), filename, purpose, len(data))
        await self.store.upsert(record)
        return record

    def _write(self, file_id: str, data: bytes) -> None:
        tmp = self.directory / f".{file_id}.{secrets.token_hex(4)}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self._path(file_id))

    async def get(self, file_id: str, key_id: str) -> FileRecord:
        record = await self.store.get(file_id, key_id)
        if record is None:
            raise NotFound(f"file '{file_id}' not found", param="file_id")
        return record

    async def content(self, file_id: str, key_id: str) -> bytes:
        await self.get(file_id, key_id)
        try:
            return await asyncio.to_thread(self._path(file_id).read_bytes)
        except FileNotFoundError:
            raise NotFound(f"the content of file '{file_id}' is gone", param="file_id") from None

    async def delete(self, file_id: str, key_id: str) -> None:
        if not await self.store.delete(file_id, key_id):
            raise NotFound(f"file '{file_id}' not found", param="file_id")
        await asyncio.to_thread(self._path(file_id).unlink, missing_ok=True)
