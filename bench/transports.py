"""How a request body reaches a contender: streamed over HTTP, or handed to xllamacpp in-process.

Both report each OpenAI-style stream chunk to a callback the moment it arrives, so the timing
code is the same for every contender, and return the response headers (none in-process), so
that glmserve's ``x-cache`` can be recorded. Foreign errors (httpx, llama.cpp) become
``TransportError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

import httpx

Chunk = dict[str, Any]
OnChunk = Callable[[Chunk], None]


class TransportError(RuntimeError):
    """The request failed before or while streaming (HTTP status, connection, llama.cpp error)."""


class Transport(Protocol):
    def stream(self, body: dict[str, Any], on_chunk: OnChunk) -> dict[str, str]: ...

    def close(self) -> None: ...


class HttpTransport:
    """Streams ``POST /v1/chat/completions`` over one pooled, thread-safe client."""

    def __init__(self, base_url: str, *, model: str, api_key: str | None = None):
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._model = model
        self._client = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(900.0, connect=10.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    @property
    def port(self) -> int:
        return int(self._client.base_url.port or 80)

    def stream(self, body: dict[str, Any], on_chunk: OnChunk) -> dict[str, str]:
        try:
            with self._client.stream(
                "POST", "/v1/chat/completions", json={**body, "model": self._model}
            ) as r:
                if r.status_code != 200:
                    raise TransportError(f"HTTP {r.status_code}: {r.read()[:300]!r}")
                headers = {k.lower(): v for k, v in r.headers.items()}
                for line in r.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    on_chunk(json.loads(data))
                return headers
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise TransportError(f"malformed SSE data: {exc}") from exc

    def close(self) -> None:
        self._client.close()


class DirectTransport:
    """Calls ``xllamacpp.Server.handle_chat_completions`` on the caller's thread (GIL released)."""

    def __init__(self, server: Any):
        self._server = server

    def stream(self, body: dict[str, Any], on_chunk: OnChunk) -> dict[str, str]:
        def callback(chunk: Chunk) -> bool:
            on_chunk(chunk)
            return False  # False: keep generating

        try:
            self._server.handle_chat_completions(body, callback)
        except Exception as exc:  # xllamacpp raises plain exceptions for rejected bodies
            raise TransportError(f"llama.cpp: {exc}") from exc
        return {}

    def close(self) -> None:
        self._server = None
