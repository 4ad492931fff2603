"""Wire shapes for ``GET /models``: one shape that both OpenAI's and Anthropic's SDKs read.

OpenAI's model object (``id``, ``object``, ``created``, ``owned_by``) with Anthropic's fields
beside it (``type``, ``display_name``, ``created_at`` as RFC 3339), and a list that carries
Anthropic's page fields (``has_more``, ``first_id``, ``last_id``) too: ``client.models.list()``
works from either SDK, on every prefix (``/api/anthropic/v1/models`` included).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel


class Capabilities(BaseModel):
    """What a model does: ``kind`` names its endpoints (chat: /chat/completions and /completions,
    embedding: /embeddings, rerank: /rerank); ``dimensions`` are the sizes an embedding request
    may ask for (native first); ``rerank`` says how documents are scored ("bi-encoder": cosine of
    embeddings, "upstream": the deployments' own reranker)."""

    kind: Literal["chat", "embedding", "rerank"] = "chat"
    vision: bool = False  # accepts image_url content parts
    dimensions: list[int] | None = None
    rerank: str | None = None


class ModelCard(BaseModel):
    """OpenAI's model object plus ``capabilities`` (extra fields are kept by the SDKs' ``Model``)."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "glmserve"
    type: Literal["model"] = "model"  # Anthropic's
    display_name: str = ""
    created_at: str = ""
    capabilities: Capabilities = Capabilities()
    # GET /models/{id} only: what the model samples with where a request says nothing.
    generation_defaults: dict[str, float | int] | None = None

    @classmethod
    def of(cls, name: str, created: int, capabilities: Capabilities) -> ModelCard:
        stamp = dt.datetime.fromtimestamp(created, dt.UTC).isoformat().replace("+00:00", "Z")
        return cls(id=name, created=created, display_name=name, created_at=stamp, capabilities=capabilities)


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
    has_more: bool = False  # Anthropic's page fields: every model is on the one page
    first_id: str | None = None
    last_id: str | None = None

    @classmethod
    def of(cls, cards: list[ModelCard]) -> ModelList:
        first, last = (cards[0].id, cards[-1].id) if cards else (None, None)
        return cls(data=cards, first_id=first, last_id=last)
