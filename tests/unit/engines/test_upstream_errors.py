"""Upstream failures in every shape they come in, as glmserve errors."""

from __future__ import annotations

import email.utils

import orjson
import pytest

from glmserve.engines.upstream.errors import error_in, from_response, retry_after_seconds
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


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> GlmError:
    return from_response(status, orjson.dumps(body), headers or {}, "m#0")


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "1261", ContextLengthExceeded),
        (400, "1301", ContentFiltered),
        (400, "1214", InvalidField),
        (400, "1210", InvalidRequest),
        (400, "context_length_exceeded", ContextLengthExceeded),
        (429, "1302", RateLimited),
        (429, "rate_limit_exceeded", RateLimited),
        (429, "1305", Unavailable),
        (200, "1305", Unavailable),
        (503, None, Unavailable),
        (500, "500", UpstreamError),
        (502, None, UpstreamError),
        (408, None, UpstreamTimeout),
        (422, None, InvalidRequest),
    ],
)
def test_status_and_code(status: int, code: str | None, kind: type[GlmError]) -> None:
    error = answer(status, {"error": {"code": code, "message": "upstream says no"}})
    assert type(error) is kind


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, "1002"),
        (401, "invalid_api_key"),
        (429, "1113"),
        (429, "insufficient_quota"),
        (400, "1211"),
        (404, None),
        (403, None),
        (307, None),
        (200, "1001"),
    ],
)
def test_problems_of_the_upstream_account_are_permanent(status: int, code: str | None) -> None:
    error = answer(status, {"error": {"code": code, "message": "Incorrect API key provided: sk-abc***"}})
    assert isinstance(error, UpstreamError) and error.permanent
    assert "sk-" not in error.message, "upstream text about its own key is not passed on"


def test_request_faults_keep_the_upstream_message() -> None:
    error = answer(400, {"error": {"code": "1261", "message": "Prompt exceeds max length"}})
    assert error.message == "Prompt exceeds max length"


def test_retry_after_is_carried_in_whole_seconds() -> None:
    assert answer(429, {}, {"retry-after": "2.5"}).retry_after == 3
    assert answer(503, {}, {"retry-after-ms": "200"}).retry_after == 1


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    date = email.utils.formatdate(1000.0 + 30, usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now=1000.0) == pytest.approx(30)
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_error_shapes() -> None:
    assert error_in({"error": {"code": "1"}}) == {"code": "1"}
    assert error_in({"error": "boom"}) == {"message": "boom"}
    assert error_in({"success": False, "code": 1305, "msg": "busy"}) == {"code": 1305, "message": "busy"}
    assert error_in({"choices": []}) is None
    assert error_in({"error": None, "choices": []}) is None
    assert error_in([1]) is None


def test_flat_zhipu_error_in_200() -> None:
    error = from_response(200, b'{"success": false, "code": 1302, "msg": "too many"}', {}, "m#0")
    assert isinstance(error, RateLimited)


def test_garbage_body() -> None:
    assert isinstance(from_response(500, b"<html>oops</html>", {}, "m#0"), UpstreamError)
