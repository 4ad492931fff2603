"""The web console: ``/`` and ``/console`` serve its page, ``/console/assets/...`` its files.

Every file ships inside the package (``glmserve/web``): no CDN and no build step, so the console
works on an air-gapped machine. Only the files found there at start-up are served (a fixed
table, so no path from a URL ever reaches the file system). Every answer carries a strict
Content-Security-Policy: scripts and styles only from this origin (no inline script, no
``eval``), requests only to this origin, no framing, no form submission; with
``X-Content-Type-Options: nosniff`` and ``X-Frame-Options: DENY``. The page signs in with an API key
it keeps in ``sessionStorage`` and sends as a header; the key is never in a URL or a cookie.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import APIRouter, Request, Response

from glmserve.errors import NotFound

router = APIRouter()

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
INDEX = "index.html"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def _walk(folder: Traversable, prefix: str = "") -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    for entry in folder.iterdir():
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            found |= _walk(entry, f"{name}/")
            continue
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        media_type = TYPES.get(suffix) or mimetypes.guess_type(entry.name)[0]
        if media_type is None or entry.name.startswith("."):
            continue  # only known kinds of file are served
        body = entry.read_bytes()
        found[name] = Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return found


@cache
def assets() -> dict[str, Asset]:
    """Every servable file under ``glmserve/web``, by its path relative to it."""
    return _walk(files("glmserve") / "web")


def _answer(request: Request, asset: Asset) -> Response:
    headers = {**SECURITY_HEADERS, "cache-control": "no-cache", "etag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/", include_in_schema=False)
@router.get("/console", include_in_schema=False)
@router.get("/console/", include_in_schema=False)
async def page(request: Request) -> Response:
    return _answer(request, assets()[INDEX])


@router.get("/console/assets/{path:path}", include_in_schema=False)
async def asset(path: str, request: Request) -> Response:
    found = assets().get(path)
    if found is None or path == INDEX:
        raise NotFound(f"no console asset {path!r}")
    return _answer(request, found)
