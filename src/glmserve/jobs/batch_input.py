"""A batch input file, checked line by line before anything is queued.

Each line is ``{"custom_id", "method": "POST", "url": <the batch's endpoint>, "body": {...}}``;
``custom_id`` is unique in the file, and each body passes its front-end's checks (the model,
the schema) exactly as the HTTP request would. Every bad line is reported — line number,
code, message, param — in OpenAI's ``errors`` list, and the batch then fails as a whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from glmserve.errors import GlmError
from glmserve.jobs.endpoints import canonical_endpoint

MAX_ERRORS = 100  # reported per file; the rest are counted in the last entry


@dataclass(slots=True)
class Line:
    custom_id: str
    body: dict[str, Any]


def _error(line: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def _shape(raw: bytes, n: int, endpoint: str, seen: set[str]) -> Line | dict[str, Any]:
    try:
        item = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _error(n, "invalid_json_line", "this line is not valid JSON")
    if not isinstance(item, dict):
        return _error(n, "invalid_request", "each line must be a JSON object")
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return _error(n, "missing_required_parameter", "custom_id is required (a string)", "custom_id")
    if custom_id in seen:
        return _error(n, "duplicate_custom_id", f"custom_id '{custom_id}' appears twice", "custom_id")
    if item.get("method", "POST") != "POST":
        return _error(n, "invalid_method", "method must be POST", "method")
    if canonical_endpoint(item.get("url")) != canonical_endpoint(endpoint):
        return _error(n, "mismatched_endpoint", f"url must be the batch's endpoint {endpoint}", "url")
    if not isinstance(item.get("body"), dict):
        return _error(n, "missing_required_parameter", "body is required (a JSON object)", "body")
    seen.add(custom_id)
    return Line(custom_id, item["body"])


async def check_lines(
    data: bytes,
    endpoint: str,
    max_lines: int,
    check_body: Callable[[dict[str, Any]], Awaitable[object]],
) -> tuple[list[Line], list[dict[str, Any]]]:
    """The file's lines, and the errors of those that are bad (empty when all are good)."""
    lines: list[Line] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        shaped = _shape(raw, n, endpoint, seen)
        if isinstance(shaped, dict):
            errors.append(shaped)
            continue
        try:
            await check_body(shaped.body)
        except GlmError as exc:
            errors.append(_error(n, exc.code, exc.message, f"body.{exc.param}" if exc.param else "body"))
            continue
        lines.append(shaped)
    if not lines and not errors:
        errors.append(_error(0, "empty_file", "the input file has no requests"))
    if len(lines) + len(errors) > max_lines:
        errors.append(_error(0, "too_many_requests", f"a batch holds at most {max_lines} requests"))
    if len(errors) > MAX_ERRORS:
        errors = [
            *errors[:MAX_ERRORS],
            _error(0, "more_errors", f"{len(errors) - MAX_ERRORS} more bad lines"),
        ]
    return lines, errors
