"""An upstream's failure, in whatever shape it came, as one of glmserve's errors.

Upstream errors arrive as a non-2xx status, as an HTTP 200 whose body is an error (Zhipu does
this, also as ``{"success": false, "code", "msg"}``), or as an SSE event carrying ``{"error"}``.
The result decides what the deployment chain does:

- the request's own fault (bad parameter, prompt too long, content safety): ``InvalidRequest``
  and its subclasses, passed to the client with the upstream's message, never retried;
- overload: ``RateLimited`` (429, 1302/1303/1312/1313) or ``Unavailable`` (503, 1305), carrying
  the upstream's Retry-After; retried elsewhere or later;
- anything else: ``UpstreamError`` (``permanent`` when retrying this deployment cannot help:
  its key was refused, its model is unknown, its quota is spent, it redirected).

Messages of upstream failures name the deployment, never its URL or key; upstream text is passed
on only for the request's own faults.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import Any

import orjson

from glmserve.errors import (
    ContentFiltered,
    ContextLengthExceeded,
    GlmError,
    InvalidField,
    InvalidRequest,
    RateLimited,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)

_REQUEST_FAULTS: dict[str, type[InvalidRequest]] = {
    "1210": InvalidRequest,
    "1212": InvalidRequest,
    "1213": InvalidRequest,
    "1214": InvalidField,
    "1215": InvalidRequest,
    "1261": ContextLengthExceeded,
    "1301": ContentFiltered,
    "context_length_exceeded": ContextLengthExceeded,
    "content_filter": ContentFiltered,
}
_BUSY = frozenset({"1302", "1303", "1312", "1313", "rate_limit_exceeded"})
_OVERLOADED = frozenset({"1305"})
# Account, key, model and quota problems of the upstream account: another deployment may work.
_PERMANENT = frozenset(
    {"1000", "1001", "1002", "1003", "1004", "1100", "1110", "1111", "1112", "1113", "1120", "1121"}
    | {"1211", "1220", "1221", "1222", "1304", "1308", "1309", "1310", "1311"}
    | {"invalid_api_key", "insufficient_quota", "model_not_found"}
)
MAX_MESSAGE = 500


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """``retry-after-ms``, or ``retry-after`` in seconds or as an HTTP date."""
    if value := headers.get("retry-after-ms"):
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def error_in(payload: Any) -> dict[str, Any] | None:
    """The error object inside a body or chunk, if it is one: ``{"error"}`` or Zhipu's flat form."""
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if isinstance(error, dict):
        return error
    if isinstance(error, str) and error:
        return {"message": error}
    if payload.get("success") is False and ("code" in payload or "msg" in payload):
        return {"code": payload.get("code"), "message": payload.get("msg")}
    return None


def from_error(error: dict[str, Any], status: int, label: str, retry_after: float | None = None) -> GlmError:
    code = str(error.get("code") or "")
    message = str(error.get("message") or error.get("msg") or "")[:MAX_MESSAGE]
    after = None if retry_after is None else max(1, math.ceil(retry_after))
    if code in _REQUEST_FAULTS:
        return _REQUEST_FAULTS[code](message or f"upstream refused the request ({code})")
    if code in _OVERLOADED or (status == 503 and code not in _BUSY):
        return Unavailable(f"deployment {label} is overloaded; retry shortly", retry_after=after)
    if code in _BUSY or (status == 429 and code not in _PERMANENT):
        return RateLimited(f"deployment {label} is rate limited; retry shortly", retry_after=after)
    if code in _PERMANENT or status in (401, 403, 404) or 300 <= status < 400:
        what = f"code {code}" if code else f"HTTP {status}"
        return UpstreamError(f"deployment {label} refused glmserve's request ({what})", permanent=True)
    if status in (400, 413, 422):
        return InvalidRequest(message or f"upstream refused the request (HTTP {status})")
    if status == 408:
        return UpstreamTimeout(f"deployment {label} timed out (HTTP 408)")
    what = f"HTTP {status}" + (f", code {code}" if code else "")
    return UpstreamError(f"deployment {label} failed ({what})")


def from_response(status: int, body: bytes, headers: Mapping[str, str], label: str) -> GlmError:
    """The error a non-2xx answer (or a 200 whose body is an error) stands for."""
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        payload = None
    error = error_in(payload) or {}
    return from_error(error, status, label, retry_after_seconds(headers))
