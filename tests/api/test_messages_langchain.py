"""langchain-anthropic's ``ChatAnthropic`` against glmserve's ``/api/anthropic``: invoke, stream,
bind_tools (a tool call whose args validate against the tool's schema)."""

from __future__ import annotations

import pytest
from jsonschema import validate
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from .server_process import GlmServe

MODEL = "glm-4.5-flash"


class GetWeather(BaseModel):
    """Get the current weather of a city."""

    city: str = Field(description="the city")


@pytest.fixture(scope="module")
def chat(server: GlmServe) -> ChatAnthropic:
    return ChatAnthropic(
        model=MODEL,
        base_url=f"{server.root}/api/anthropic",
        api_key=server.api_key,  # type: ignore[arg-type]
        max_retries=0,
        max_tokens=12,
        temperature=0,
        timeout=300,
    )


def test_invoke(chat: ChatAnthropic) -> None:
    reply = chat.invoke([SystemMessage("Answer briefly."), HumanMessage("Say hello.")])
    assert isinstance(reply, AIMessage) and reply.text
    assert reply.usage_metadata is not None and reply.usage_metadata["input_tokens"] > 0
    assert reply.response_metadata["stop_reason"] in ("end_turn", "max_tokens")


def test_stream_adds_up_to_invoke(chat: ChatAnthropic) -> None:
    messages = [HumanMessage("Count from 1 to 5.")]
    chat.invoke(messages)  # warms the prompt cache (greedy runs then agree)
    whole = chat.invoke(messages)
    chunks = list(chat.stream(messages))
    assert len(chunks) > 1 and all(isinstance(c, AIMessageChunk) for c in chunks)
    joined = chunks[0]
    for chunk in chunks[1:]:
        joined += chunk
    assert joined.text == whole.text
    assert joined.usage_metadata is not None and joined.usage_metadata["output_tokens"] > 0


def test_bind_tools(chat: ChatAnthropic) -> None:
    forced = chat.bind_tools([GetWeather], tool_choice="GetWeather")
    reply = forced.invoke("What's the weather in Paris?", max_tokens=48)
    [call] = reply.tool_calls
    assert call["name"] == "GetWeather" and call["id"].startswith("toolu_")
    validate(call["args"], GetWeather.model_json_schema())
