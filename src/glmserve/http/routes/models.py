from __future__ import annotations

from fastapi import APIRouter, Request, Response

from glmserve.errors import NoSuchModel
from glmserve.frontends.models import Capabilities, ModelCard, ModelList
from glmserve.http.responses import json_response
from glmserve.services import authenticate, services
from glmserve.serving.model_router import ModelRouter

router = APIRouter()


async def _authenticate(request: Request) -> None:
    """The Anthropic SDK (``/api/anthropic/v1/models``, or ``/v1/models`` from the root) sends its
    key as ``x-api-key``; OpenAI's and Zhipu's as ``Authorization``."""
    await authenticate(request, request.headers.get("x-api-key"))


def _card(name: str, table: ModelRouter) -> ModelCard:
    route = table.resolve(name)
    capabilities = Capabilities(
        kind=route.kind,  # type: ignore[arg-type]
        vision=route.vision,
        dimensions=list(route.dimensions) or None,
        rerank=route.scoring,
    )
    return ModelCard.of(name, table.created, capabilities)


@router.get("/models")
async def list_models(request: Request) -> Response:
    await _authenticate(request)
    table = services(request).router
    cards = ModelList.of([_card(n, table) for n in table.names])
    return json_response(cards.model_dump(exclude={"data": {"__all__": {"generation_defaults"}}}))


@router.get("/models/{model_id:path}")
async def retrieve_model(model_id: str, request: Request) -> Response:
    await _authenticate(request)
    table = services(request).router
    if model_id not in table.names:
        raise NoSuchModel(f"model '{model_id}' does not exist", param="model")
    card = _card(model_id, table)
    defaults = table.resolve(model_id).defaults
    card.generation_defaults = defaults.as_dict() if defaults is not None else {}
    return json_response(card.model_dump())
