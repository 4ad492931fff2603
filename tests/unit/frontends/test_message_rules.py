"""The tool-message order rules (frontends/chat/message_rules.py), as a table of conversations."""

from __future__ import annotations

from typing import Any

import pytest

from glmserve.errors import InvalidField
from glmserve.frontends.chat.message_rules import check_message_sequence
from glmserve.frontends.chat.protocol import Message

USER: dict[str, Any] = {"role": "user", "content": "北京今天天气怎么样？"}
SYSTEM: dict[str, Any] = {"role": "system", "content": "你是一个有用的AI助手。"}
ANSWER: dict[str, Any] = {"role": "assistant", "content": "晴，25°C。"}


def calls(*ids: str | None) -> dict[str, Any]:
    function = {"name": "get_weather", "arguments": "{}"}
    made = [{"type": "function", "function": function, **({"id": i} if i else {})} for i in ids]
    return {"role": "assistant", "content": "", "tool_calls": made}


def tool(call_id: str | None) -> dict[str, Any]:
    return {"role": "tool", "content": "晴", **({"tool_call_id": call_id} if call_id else {})}


VALID = {
    "plain chat": [SYSTEM, USER, ANSWER, USER],
    "one call answered": [USER, calls("a"), tool("a"), ANSWER],
    "answered, then the next user turn": [USER, calls("a"), tool("a"), USER],
    "two calls answered in any order": [USER, calls("a", "b"), tool("b"), tool("a")],
    "a system message between call and answer": [USER, calls("a"), SYSTEM, tool("a")],
    "two rounds": [USER, calls("a"), tool("a"), calls("b"), tool("b"), ANSWER, USER],
    "an assistant message with an empty tool_calls list": [USER, {**ANSWER, "tool_calls": []}, USER],
}

INVALID = {
    "tool message without tool_call_id": ([USER, calls("a"), tool(None)], "messages[2].tool_call_id"),
    "tool message with no call before it": ([USER, tool("a")], "messages[1].tool_call_id"),
    "tool message first": ([tool("a"), USER], "messages[0].tool_call_id"),
    "answer to an id never called": ([USER, calls("a"), tool("b")], "messages[2].tool_call_id"),
    "the same call answered twice": ([USER, calls("a"), tool("a"), tool("a")], "messages[3].tool_call_id"),
    "an answer after the next turn": (
        [USER, calls("a"), tool("a"), USER, tool("a")],
        "messages[4].tool_call_id",
    ),
    "tool message after a plain answer": ([USER, ANSWER, tool("a")], "messages[2].tool_call_id"),
    "a call unanswered before the next user turn": ([USER, calls("a"), USER], "messages[1].tool_calls"),
    "one of two calls unanswered": ([USER, calls("a", "b"), tool("a"), ANSWER], "messages[1].tool_calls"),
    "a call unanswered at the end": ([USER, calls("a")], "messages[1].tool_calls"),
    "a call without an id": ([USER, calls(None), tool("a")], "messages[1].tool_calls[0].id"),
}


def messages(raw: list[dict[str, Any]]) -> list[Message]:
    return [Message.model_validate(m) for m in raw]


@pytest.mark.parametrize("raw", list(VALID.values()), ids=list(VALID))
def test_valid_sequences_pass(raw: list[dict[str, Any]]) -> None:
    check_message_sequence(messages(raw))


@pytest.mark.parametrize(("raw", "param"), list(INVALID.values()), ids=list(INVALID))
def test_invalid_sequences_name_the_message(raw: list[dict[str, Any]], param: str) -> None:
    with pytest.raises(InvalidField) as caught:
        check_message_sequence(messages(raw))
    assert caught.value.param == param
    assert caught.value.code == "1214" and caught.value.status == 400
    assert param.split(".")[0] in caught.value.message


def test_unanswered_ids_are_listed() -> None:
    with pytest.raises(InvalidField) as caught:
        check_message_sequence(messages([USER, calls("call_1", "call_2", "call_3"), tool("call_2"), USER]))
    assert "call_1, call_3" in caught.value.message
