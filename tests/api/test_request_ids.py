"""`request_id` in bodies (echoed or generated) and the `x-request-id` header on every response."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from .server_process import GlmServe

REQUEST: dict[str, Any] = {
    "model": "glm-4.5-flash",
    "messages": [{"role": "user", "content": "hi"}],
    "temperature": 0,
    "max_tokens": 2,
}


def test_request_id_is_echoed(client: OpenAI) -> None:
    completion = client.chat.completions.create(**REQUEST, extra_body={"request_id": "client-chosen-42"})

    assert completion.model_extra is not None
    assert completion.model_extra["request_id"] == "client-chosen-42"


def test_request_id_is_generated_and_unique(client: OpenAI) -> None:
    first = client.chat.completions.create(**REQUEST)
    second = client.chat.completions.create(**REQUEST)

    ids = [(c.model_extra or {}).get("request_id") for c in (first, second)]
    assert all(isinstance(i, str) and i for i in ids), ids
    assert ids[0] != ids[1]
    assert first.id != second.id


def test_header_on_completion(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(**REQUEST)

    assert raw.headers.get("x-request-id")
    assert raw.parse().choices[0].message.content is not None


def test_header_on_stream(http: httpx.Client) -> None:
    with http.stream("POST", "chat/completions", json={**REQUEST, "stream": True}) as response:
        response.read()

    assert response.status_code == 200
    assert response.headers.get("x-request-id")


def test_headers_are_distinct(http: httpx.Client) -> None:
    seen = {http.get("models").headers.get("x-request-id") for _ in range(3)}

    assert None not in seen and len(seen) == 3


def test_header_on_errors(server: GlmServe, client: OpenAI) -> None:
    with httpx.Client(timeout=30) as raw:
        unauthenticated = raw.post(server.paas_url + "chat/completions", json=REQUEST)
        unknown_route = raw.get(
            server.root + "/api/paas/v4/no-such-route", headers={"Authorization": f"Bearer {server.api_key}"}
        )
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**{**REQUEST, "model": "glm-0-no-such-model"})

    assert unauthenticated.status_code == 401 and unauthenticated.headers.get("x-request-id")
    assert unknown_route.status_code == 404 and unknown_route.headers.get("x-request-id")
    assert caught.value.request_id


def test_header_on_health(server: GlmServe) -> None:
    response = httpx.get(f"{server.root}/health")

    assert response.status_code == 200
    assert response.headers.get("x-request-id")
    assert isinstance(response.json()["in_flight"], int)
