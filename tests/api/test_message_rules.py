"""Tool-message order rules over HTTP: a 400 ``1214`` naming the message, on both base paths.

The full table is in ``tests/unit/test_message_rules.py``; here a few rows go through the real
server and the openai SDK, before any generation starts.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai import OpenAI

from .wire_schema import assert_error

USER = {"role": "user", "content": "北京今天天气怎么样？"}
CALL = {
    "role": "assistant",
    "content": "",
    "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    ],
}
CASES: dict[str, tuple[list[dict[str, Any]], str]] = {
    "tool message without tool_call_id": (
        [USER, CALL, {"role": "tool", "content": "晴"}],
        "messages[2].tool_call_id",
    ),
    "tool message answering nothing": (
        [USER, {"role": "tool", "tool_call_id": "call_9", "content": "晴"}],
        "messages[1].tool_call_id",
    ),
    "a call left unanswered": ([USER, CALL, USER], "messages[1].tool_calls"),
}


@pytest.fixture(params=["paas", "v1"])
def sdk(request: pytest.FixtureRequest, client: OpenAI, v1_client: OpenAI) -> OpenAI:
    return client if request.param == "paas" else v1_client


@pytest.mark.parametrize("case", list(CASES))
def test_broken_sequences_are_a_400_naming_the_message(sdk: OpenAI, case: str) -> None:
    messages, param = CASES[case]
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="glm-4.5-flash", messages=messages, max_tokens=4)  # type: ignore[arg-type]
    assert caught.value.status_code == 400
    assert_error(caught.value.response.json())
    assert caught.value.code == "1214" and caught.value.param == param, caught.value.response.text


def test_an_answered_call_is_accepted(client: OpenAI) -> None:
    answered = [USER, CALL, {"role": "tool", "tool_call_id": "call_1", "content": "晴，25°C"}]
    reply = client.chat.completions.create(
        model="glm-4.5-flash",
        messages=answered,
        temperature=0,
        max_tokens=8,  # type: ignore[arg-type]
    )
    assert reply.choices[0].message.content
