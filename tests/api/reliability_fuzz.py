"""Property-based fuzzing of every route (hypothesis): whatever a client sends, glmserve answers
within a few seconds, never with a 5xx, and every error in the OpenAI/Zhipu envelope
``{"error": {"message": str, "type": str, ...}}``.

Requests mix well-formed and malformed parts: every route and method (and unknown ones), bodies
that are chat requests with any field replaced by any JSON value, raw bytes and truncated JSON,
missing, wrong and valid credentials. A valid chat request is answered by the fake upstream, so
the deep paths (streaming, tools, response formats) are exercised too.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .reliability_scenarios import Verdict
from .server_process import GlmServe

ROUTES = [
    ("POST", "/v1/chat/completions"),
    ("POST", "/api/paas/v4/chat/completions"),
    ("GET", "/v1/models"),
    ("GET", "/api/paas/v4/models/{id}"),
    ("GET", "/health"),
    ("GET", "/livez"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/admin/keys"),
    ("GET", "/admin/keys"),
    ("GET", "/admin/keys/{id}"),
    ("PATCH", "/admin/keys/{id}"),
    ("POST", "/admin/keys/{id}/revoke"),
    ("DELETE", "/admin/keys/{id}"),
    ("POST", "/admin/keys/{id}/rotate"),
    ("GET", "/admin/usage"),
    ("GET", "/admin/usage/daily"),
    ("PUT", "/v1/chat/completions"),
    ("GET", "/v1/nothing/here"),
    ("POST", "/api/paas/v4/embeddings"),
]
TIMEOUT_S = 10.0

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
)
role = st.sampled_from(["system", "user", "assistant", "tool", "developer", "robot", ""])
content = st.one_of(
    st.text(max_size=60),
    st.lists(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "image_url", "video_url", "x"])},
            optional={
                "text": json_value,
                "image_url": st.one_of(json_value, st.just({"url": "data:image/png;base64,AAAA"})),
            },
        ),
        max_size=3,
    ),
    json_value,
)
message = st.fixed_dictionaries(
    {"role": role}, optional={"content": content, "tool_calls": json_value, "name": json_value}
)
tool = st.fixed_dictionaries(
    {"type": st.sampled_from(["function", "web_search", "retrieval"])},
    optional={
        "function": st.fixed_dictionaries({"name": st.text(max_size=20)}, optional={"parameters": json_value})
    },
)
chat_fields = {
    "model": st.one_of(st.sampled_from(["rel", "glm-4.6", "nope"]), json_value),
    "messages": st.one_of(st.lists(message, max_size=4), json_value),
    "stream": st.one_of(st.booleans(), json_value),
    "temperature": st.one_of(st.floats(-5, 5), json_value),
    "top_p": st.one_of(st.floats(-1, 2), json_value),
    "max_tokens": st.one_of(st.integers(-10, 10**9), json_value),
    "tools": st.one_of(st.lists(tool, max_size=3), json_value),
    "tool_choice": st.one_of(st.sampled_from(["auto", "none", "required"]), json_value),
    "response_format": st.one_of(st.sampled_from([{"type": "json_object"}, {"type": "text"}]), json_value),
    "thinking": st.one_of(st.sampled_from([{"type": "enabled"}, {"type": "disabled"}]), json_value),
    "stop": json_value,
    "n": json_value,
    "request_id": json_value,
    "stream_options": json_value,
}
chat_body = st.fixed_dictionaries({}, optional=chat_fields)
raw_body = st.one_of(
    chat_body.map(lambda b: json.dumps(b).encode()),
    chat_body.map(lambda b: json.dumps(b).encode()[: max(1, len(json.dumps(b)) // 2)]),
    st.binary(max_size=200),
    json_value.map(lambda v: json.dumps(v).encode()),
)
key_id = st.one_of(
    st.sampled_from(["nope", "0" * 32, "..", "%2e%2e", "a/b"]), st.text(min_size=1, max_size=30)
)
query = st.dictionaries(
    st.sampled_from(["limit", "key_id", "model", "since", "until", "request_id"]),
    st.text(max_size=12),
    max_size=3,
)


def check(response: httpx.Response, method: str, path: str) -> None:
    where = f"{method} {path} -> {response.status_code}: {response.text[:300]!r}"
    assert response.status_code < 500, where
    if response.status_code == 400 and response.text.startswith("Invalid HTTP request"):
        return  # uvicorn's HTTP parser refused the bytes (a control character in a header) before any app
    if response.status_code >= 400:
        payload = response.json()
        error = payload.get("error") if isinstance(payload, dict) else None
        assert isinstance(error, dict), where
        assert isinstance(error.get("message"), str) and error["message"], where
        assert isinstance(error.get("type", ""), str), where


def fuzz(server: GlmServe, examples: int) -> Verdict:
    """``examples`` generated requests against ``server``; fails on the first broken answer."""
    stats = {"requests": 0, "status": {}}
    statuses: dict[str, int] = stats["status"]  # type: ignore[assignment]
    with httpx.Client(base_url=server.root, timeout=TIMEOUT_S) as http:

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            route=st.sampled_from(ROUTES),
            ident=key_id,
            body=raw_body,
            params=query,
            credential=st.sampled_from(["static", "none", "junk", "jwtish"]),
            content_type=st.sampled_from(["application/json", "text/plain", None]),
        )
        def one(
            route: tuple[str, str],
            ident: str,
            body: bytes,
            params: dict[str, str],
            credential: str,
            content_type: str | None,
        ) -> None:
            method, template = route
            path = template.replace("{id}", ident)
            headers: dict[str, Any] = {}
            if credential == "static":
                headers["authorization"] = f"Bearer {server.api_key}"
            elif credential == "junk":
                headers["authorization"] = "Bearer sk-" + ident
            elif credential == "jwtish":
                headers["authorization"] = f"Bearer {ident}.{ident}.{ident}"
            if content_type:
                headers["content-type"] = content_type
            sends_body = method in ("POST", "PATCH", "PUT")
            try:
                response = http.request(
                    method, path, content=body if sends_body else None, params=params, headers=headers
                )
            except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeEncodeError):
                return  # the client refused the path or a header; nothing reached the server
            stats["requests"] += 1  # type: ignore[operator]
            statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
            check(response, method, path)

        try:
            one()
            failure = None
        except (AssertionError, httpx.TimeoutException, httpx.TransportError, ExceptionGroup) as exc:
            failure = f"{type(exc).__name__}: {exc}"[:600]
    figures: dict[str, Any] = dict(stats)
    if failure:
        figures["failure"] = failure
    return Verdict(
        "bad inputs: fuzzing every route",
        "no 5xx, no hang (10 s), every error in the envelope",
        not failure,
        figures,
    )
