"""Wire shapes for ``GET /models``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Capabilities(BaseModel):
    vision: bool = False  # accepts image_url content parts


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
