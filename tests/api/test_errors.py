"""Invalid input: the SDK exception class, the HTTP status and the Zhipu business code (API.md §4).

Every error is an OpenAI-shaped envelope with a string `code`, carries `x-request-id`, never
comes back as a framework 422, and never echoes a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from zhipuai import ZhipuAI
from zhipuai.core._errors import APIAuthenticationError, APIRequestFailedError

from .credentials import expired_jwt, new_secret
from .server_process import GlmServe
from .wire_schema import assert_error

BASE: dict[str, Any] = {
    "model": "glm-4.5-flash",
    "messages": [{"role": "user", "content": "hi"}],
    "temperature": 0,
    "max_tokens": 4,
}


@dataclass(frozen=True)
class Invalid:
    """A request that must be refused with HTTP 400: its exact code and the field it names."""

    overrides: dict[str, Any]
    code: str
    param: str | None
    zhipuai_too: bool = False


# zhipuai clamps temperature and top_p into (0, 1) before sending, so those two rows are openai-only.
# The README: 1214 is an invalid field (``param`` names it), 1211 an unknown model, 1261 a prompt
# longer than the context.
BAD_REQUESTS: dict[str, Invalid] = {
    "bad-role": Invalid(
        {"messages": [{"role": "wizard", "content": "hi"}]}, "1214", "messages[0].role", True
    ),
    "empty-messages": Invalid({"messages": []}, "1214", "messages", True),
    "temperature-3": Invalid({"temperature": 3}, "1214", "temperature"),
    "top_p-negative": Invalid({"top_p": -1}, "1214", "top_p"),
    "max_tokens-0": Invalid({"max_tokens": 0}, "1214", "max_tokens", True),
    "unknown-model": Invalid({"model": "glm-0-no-such-model"}, "1211", "model", True),
    "n-2": Invalid({"n": 2}, "1214", "n"),
    "prompt-too-long": Invalid(
        {"messages": [{"role": "user", "content": "你好 " * 5000}]}, "1261", "messages"
    ),
}


def check_error_response(response: httpx.Response | Any, status: int, code: str | None) -> dict[str, Any]:
    """Status, envelope, code and x-request-id of an error response; returns the `error` object.

    ``code`` None: the caller checks the code itself.
    """
    assert response.status_code == status, response.text
    assert response.headers.get("x-request-id"), "error responses carry x-request-id too"
    body = response.json()
    assert_error(body)
    if code is not None:
        assert body["error"]["code"] == code, body
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_openai_bad_request(client: OpenAI, name: str, stream: bool) -> None:
    case = BAD_REQUESTS[name]

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**{**BASE, **case.overrides}, stream=stream)

    error = check_error_response(caught.value.response, 400, case.code)
    assert (caught.value.code, caught.value.param) == (case.code, case.param), error


@pytest.mark.parametrize("name", [n for n, case in BAD_REQUESTS.items() if case.zhipuai_too])
def test_zhipuai_bad_request(server: GlmServe, name: str) -> None:
    case = BAD_REQUESTS[name]
    zhipu = ZhipuAI(api_key=server.api_key, base_url=server.paas_url.rstrip("/"), max_retries=0)

    with pytest.raises(APIRequestFailedError) as caught:
        zhipu.chat.completions.create(**{**BASE, **case.overrides})

    assert caught.value.status_code == 400
    check_error_response(caught.value.response, 400, case.code)


def openai_with(server: GlmServe, api_key: str) -> OpenAI:
    return OpenAI(api_key=api_key, base_url=server.paas_url, max_retries=0, timeout=60)


AUTH_FAILURES = {
    # name: (credential to send, or None for no Authorization header; expected code)
    "missing-auth": (None, "1001"),
    "bad-key": ("wrong-secret", "1002"),
    "expired-jwt": ("expired-jwt", "1003"),
}


def credential(server: GlmServe, kind: str) -> str:
    if kind == "wrong-secret":
        return f"{server.key_id}.{new_secret()}"
    return expired_jwt(server.api_key)


@pytest.mark.parametrize("name", list(AUTH_FAILURES))
def test_openai_auth_failure(server: GlmServe, name: str) -> None:
    kind, code = AUTH_FAILURES[name]
    sent = credential(server, kind) if kind else None
    sdk = openai_with(server, sent or server.api_key)
    extra_headers = {"Authorization": openai.omit} if sent is None else None

    with pytest.raises(openai.AuthenticationError) as caught:
        sdk.chat.completions.create(**BASE, extra_headers=extra_headers)

    check_error_response(caught.value.response, 401, code)
    text = caught.value.response.text
    assert server.secret not in text
    if sent is not None:
        assert sent not in text and sent.rsplit(".", 1)[-1] not in text


def test_zhipuai_bad_key(server: GlmServe) -> None:
    wrong = f"{server.key_id}.{new_secret()}"
    zhipu = ZhipuAI(api_key=wrong, base_url=server.paas_url.rstrip("/"), max_retries=0)

    with pytest.raises(APIAuthenticationError) as caught:
        zhipu.chat.completions.create(**BASE)

    assert caught.value.status_code == 401
    check_error_response(caught.value.response, 401, "1002")
    assert wrong.split(".")[1] not in caught.value.response.text


def test_malformed_json(http: httpx.Client) -> None:
    response = http.post(
        "chat/completions",
        content=b'{"model": "glm-4.6", "messages": [{"role": "user", ',
        headers={"Content-Type": "application/json"},
    )

    check_error_response(response, 400, "1210")


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ([], "1210", None),  # not a JSON object: a malformed body
        ({"model": "glm-4.6"}, "1214", "messages"),
        ({"model": "glm-4.6", "messages": "hi"}, "1214", "messages"),
        ({"messages": BASE["messages"]}, "1214", "model"),
    ],
    ids=["array", "no-messages", "messages-not-a-list", "no-model"],
)
def test_wrong_shape_is_400_not_422(http: httpx.Client, body: Any, code: str, param: str | None) -> None:
    response = http.post("chat/completions", json=body)

    error = check_error_response(response, 400, code)
    assert error["param"] == param, error


def test_oversized_body_is_413(client: OpenAI) -> None:
    nine_mib = "x" * (9 * 1024 * 1024)

    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(**{**BASE, "messages": [{"role": "user", "content": nine_mib}]})

    check_error_response(caught.value.response, 413, "1210")  # errors.py: PayloadTooLarge is a 1210
