"""A ``Rendering`` for answers that are never streamed (embeddings, rerank): one JSON body."""

from __future__ import annotations

from typing import Any

from glmserve.engines.base import Event
from glmserve.errors import GlmError


class JsonRendering:
    """Subclasses implement ``body``; the stream half is unreachable for a plan with ``stream=False``."""

    media_type = "application/json"

    async def body(self, events: list[Event]) -> Any:
        raise NotImplementedError

    async def open(self) -> list[bytes]:
        raise NotImplementedError("this answer is never streamed")

    def encode(self, event: Event) -> list[bytes]:
        raise NotImplementedError("this answer is never streamed")

    async def close(self) -> list[bytes]:
        raise NotImplementedError("this answer is never streamed")

    def fail(self, error: GlmError) -> list[bytes]:
        raise NotImplementedError("this answer is never streamed")
