"""glmserve's errors in Anthropic's envelope, for every path of the Messages front-end.

``{"type": "error", "error": {"type", "message", "code"}, "request_id"}``: ``type`` follows
the HTTP status as Anthropic's does (400 ``invalid_request_error``, 401
``authentication_error``, 403 ``permission_error``, 404 ``not_found_error``, 413
``request_too_large``, 429 ``rate_limit_error``, 500 ``api_error``, 504 ``timeout_error``,
529 ``overloaded_error``); ``code`` is the Zhipu business code of the same error on the
chat route (Zhipu's own ``/api/anthropic`` puts that code in ``type`` instead, which clients
branching on Anthropic's types cannot use). glmserve's 503 (overloaded, nothing available)
is Anthropic's 529. The app's exception handlers use this for every path under
``ANTHROPIC_PREFIXES``, unknown routes and unreadable bodies included.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response

from glmserve.errors import GlmError
from glmserve.http.responses import json_response

ANTHROPIC_PREFIXES = ("/api/anthropic/", "/v1/messages")
OVERLOADED = 529
TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def is_anthropic_path(path: str) -> bool:
    return path.startswith(ANTHROPIC_PREFIXES) or path == "/api/anthropic"


def anthropic_status(status: int) -> int:
    return OVERLOADED if status == 503 else status


def error_type(status: int) -> str:
    return TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def error_body(error: GlmError, request_id: str, status: int | None = None) -> dict[str, Any]:
    status = anthropic_status(status or error.status)
    detail = {"type": error_type(status), "message": error.message, "code": error.code}
    return {"type": "error", "error": detail, "request_id": request_id}


def error_response(error: GlmError, request_id: str, status: int | None = None) -> Response:
    """``status`` overrides the error's own (a framework error carries its own status)."""
    shown = anthropic_status(status or error.status)
    headers = {**error.headers(), "x-request-id": request_id, "request-id": request_id}
    return json_response(error_body(error, request_id, shown), shown, headers)
