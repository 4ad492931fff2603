"""GET /models and /models/{id} on both base paths, and the model names chat accepts."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai import OpenAI

from .server_process import GlmServe
from .wire_schema import assert_error, assert_valid

SERVED = ["glm-4.6", "glm-4.5", "glm-4.5-air", "glm-4.5-flash"]
ALIASES = ["gpt-5", "gpt-4-turbo"]


@pytest.fixture(params=["paas", "v1"])
def sdk(request: pytest.FixtureRequest, client: OpenAI, v1_client: OpenAI) -> OpenAI:
    return client if request.param == "paas" else v1_client


def test_list_contains_served_models(sdk: OpenAI) -> None:
    ids = [model.id for model in sdk.models.list()]

    assert set(SERVED) <= set(ids), ids
    assert len(ids) == len(set(ids)), "no duplicates"


@pytest.mark.parametrize("path", ["/api/paas/v4/models", "/v1/models"])
def test_raw_list_validates(server: GlmServe, path: str) -> None:
    response = httpx.get(server.root + path, headers={"Authorization": f"Bearer {server.api_key}"})

    assert response.status_code == 200, response.text
    assert response.headers.get("x-request-id")
    assert_valid("ListModelsResponse", response.json())


@pytest.mark.parametrize("name", SERVED)
def test_retrieve(sdk: OpenAI, name: str) -> None:
    model = sdk.models.retrieve(name)

    assert model.id == name
    assert model.object == "model"


def test_retrieve_unknown_is_404(sdk: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.models.retrieve("glm-0-no-such-model")

    assert caught.value.status_code == 404
    assert_error(caught.value.response.json())
    assert caught.value.request_id


@pytest.mark.parametrize("name", SERVED + ALIASES)
def test_chat_answers_as_the_name_asked_for(sdk: OpenAI, name: str) -> None:
    completion = sdk.chat.completions.create(
        model=name, messages=[{"role": "user", "content": "hi"}], temperature=0, max_tokens=2
    )

    assert completion.model == name
    assert completion.choices[0].message.role == "assistant"


def test_alias_is_the_same_model(client: OpenAI) -> None:
    """`gpt-5` routes to glm-4.6: under greedy decoding both give the same text."""
    request = {"messages": [{"role": "user", "content": "Name a color."}], "temperature": 0, "max_tokens": 12}

    direct = client.chat.completions.create(model="glm-4.6", **request)
    aliased = client.chat.completions.create(model="gpt-5", **request)

    assert aliased.choices[0].message.content == direct.choices[0].message.content
