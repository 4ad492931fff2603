"""Wire shapes for ``GET /models``."""

from __future__ import annotations

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
    capabilities: Capabilities = Capabilities()
    # GET /models/{id} only: what the model samples with where a request says nothing.
    generation_defaults: dict[str, float | int] | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
