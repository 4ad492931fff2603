"""``/files``: upload (multipart, ``purpose=batch``), list, read, content and delete, per key."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.datastructures import UploadFile

from glmserve.errors import InvalidField, InvalidRequest
from glmserve.http.responses import json_response
from glmserve.services import authenticate, services

router = APIRouter()
MAX_LIST = 10_000


@router.post("/files")
async def upload(request: Request) -> Response:
    files = services(request).require_jobs().files
    principal = await authenticate(request)
    declared = int(request.headers.get("content-length") or 0)
    if declared > files.max_bytes + 64 * 1024:
        raise InvalidField(f"file is larger than {files.max_bytes} bytes", param="file")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("upload a file as multipart/form-data with fields 'file' and 'purpose'")
    async with request.form(max_files=1, max_fields=8) as form:
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, UploadFile):
            raise InvalidField("'file' is required (a multipart file part)", param="file")
        if not isinstance(purpose, str) or not purpose:
            raise InvalidField("'purpose' is required", param="purpose")
        data = await upload.read(files.max_bytes + 1)
        record = await files.upload(principal.key_id, upload.filename or "upload.jsonl", purpose, data)
    return json_response(record.body())


@router.get("/files")
async def list_files(request: Request, purpose: str | None = None, limit: int = MAX_LIST) -> Response:
    files = services(request).require_jobs().files
    principal = await authenticate(request)
    records = await files.store.list(principal.key_id, purpose, max(1, min(limit, MAX_LIST)))
    return json_response({"object": "list", "data": [r.body() for r in records], "has_more": False})


@router.get("/files/{file_id}")
async def get_file(request: Request, file_id: str) -> Response:
    files = services(request).require_jobs().files
    principal = await authenticate(request)
    return json_response((await files.get(file_id, principal.key_id)).body())


@router.get("/files/{file_id}/content")
async def file_content(request: Request, file_id: str) -> Response:
    files = services(request).require_jobs().files
    principal = await authenticate(request)
    data = await files.content(file_id, principal.key_id)
    return Response(data, media_type="application/octet-stream")


@router.delete("/files/{file_id}")
async def delete_file(request: Request, file_id: str) -> Response:
    files = services(request).require_jobs().files
    principal = await authenticate(request)
    await files.delete(file_id, principal.key_id)
    return json_response({"id": file_id, "object": "file", "deleted": True})
