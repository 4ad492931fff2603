"""What differs between the two upstream protocols; ``UpstreamEngine`` does the rest.

``OpenAIDialect`` (every kind but ``anthropic``): ``POST {base_url}/chat/completions``,
``Authorization: Bearer``, chat chunks ending in ``[DONE]`` (``events``, ``request``).
``AnthropicDialect``: ``POST {base_url}/v1/messages`` (``base_url`` as Anthropic's SDKs take
it: ``https://api.anthropic.com``, ``https://open.bigmodel.cn/api/anthropic``), the key as
``x-api-key`` (``auth = "bearer"``: as ``Authorization: Bearer``), ``anthropic-version``
(the client's, else ``ANTHROPIC_VERSION``) and the client's ``anthropic-beta`` passed on,
named events ending in ``message_stop`` (``anthropic_request``, ``anthropic_events``). Its
default health check is ``GET v1/models``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from glmserve.engines.base import Event, Generation
from glmserve.engines.upstream import anthropic_events, anthropic_request
from glmserve.engines.upstream import errors as upstream_errors
from glmserve.engines.upstream.events import ChunkMapper, completion_events
from glmserve.engines.upstream.request import CONTINUOUS_USAGE, request_body
from glmserve.engines.upstream.sse import SseEvent
from glmserve.errors import GlmError

ANTHROPIC_VERSION = "2023-06-01"


class Stream(Protocol):
    finish: str | None

    def feed(self, sse: SseEvent) -> list[Event] | None:
        """Events of one SSE event; ``None`` at the end marker; raises the error it carries."""

    def end(self) -> list[Event]: ...


class OpenAIStream:
    def __init__(self, label: str, continuous: bool = False) -> None:
        self.label = label
        self.chunks = ChunkMapper(continuous)

    @property
    def finish(self) -> str | None:
        return self.chunks.finish

    def feed(self, sse: SseEvent) -> list[Event] | None:
        if sse.data == b"[DONE]":
            return None
        payload = orjson.loads(sse.data)
        error = upstream_errors.error_in(payload)
        if error is not None or sse.event == "error":
            raise upstream_errors.from_error(error or {}, 200, self.label)
        return self.chunks.chunk(payload)

    def end(self) -> list[Event]:
        return self.chunks.end()


class OpenAIDialect:
    path = "chat/completions"
    default_health_path = "models"

    def __init__(self, kind: str, auth: str) -> None:
        self.kind = kind

    def body(self, gen: Generation, model: str) -> dict[str, Any]:
        return request_body(gen, self.kind, model)

    def headers(self, gen: Generation | None, token: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {token}"} if token else {}

    def stream(self, label: str) -> Stream:
        return OpenAIStream(label, continuous=self.kind in CONTINUOUS_USAGE)

    def whole(self, payload: Any, label: str) -> list[Event]:
        if (error := upstream_errors.error_in(payload)) is not None:
            raise upstream_errors.from_error(error, 200, label)
        return completion_events(payload)

    def error(self, status: int, raw: bytes, headers: Mapping[str, str], label: str) -> GlmError:
        return upstream_errors.from_response(status, raw, headers, label)


class AnthropicDialect:
    path = "v1/messages"
    default_health_path = "v1/models"
    count_path = "v1/messages/count_tokens"

    def __init__(self, kind: str, auth: str) -> None:
        self.bearer = auth == "bearer"

    def body(self, gen: Generation, model: str) -> dict[str, Any]:
        return anthropic_request.request_body(gen, model)

    def headers(self, gen: Generation | None, token: str | None) -> dict[str, str]:
        sent = gen.headers if gen is not None else {}
        headers = {"anthropic-version": sent.get("anthropic-version") or ANTHROPIC_VERSION}
        if beta := sent.get("anthropic-beta"):
            headers["anthropic-beta"] = beta
        if token:
            headers.update({"authorization": f"Bearer {token}"} if self.bearer else {"x-api-key": token})
        return headers

    def stream(self, label: str) -> Stream:
        return anthropic_events.MessageMapper(label)

    def whole(self, payload: Any, label: str) -> list[Event]:
        return anthropic_events.message_events(payload, label)

    def error(self, status: int, raw: bytes, headers: Mapping[str, str], label: str) -> GlmError:
        return anthropic_events.error_response(status, raw, headers, label)


Dialect = OpenAIDialect | AnthropicDialect


def dialect_for(kind: str, auth: str) -> Dialect:
    return AnthropicDialect(kind, auth) if kind == "anthropic" else OpenAIDialect(kind, auth)
