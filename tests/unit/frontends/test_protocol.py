import pytest

from glmserve.errors import InvalidField, InvalidRequest
from glmserve.frontends.chat.plan import to_generation
from glmserve.frontends.chat.protocol import ChatCompletionRequest
from glmserve.frontends.validation import parse

BASE = {"model": "glm-4.6", "messages": [{"role": "user", "content": "hi"}]}


def test_zhipu_nulls_and_unknown_fields_are_accepted():
    req = parse(ChatCompletionRequest, {**BASE, "thinking": None, "response_format": None, "whatever": 1})
    assert req.thinking is None


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"temperature": 3}, "temperature"),
        ({"top_p": -1}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "bogus", "content": "x"}]}, "messages[0].role"),
        ({"n": 2}, "n"),
    ],
)
def test_invalid_fields_name_the_field(patch, param):
    with pytest.raises(InvalidField) as info:
        parse(ChatCompletionRequest, {**BASE, **patch})
    assert info.value.param == param and info.value.code == "1214"


def test_body_must_be_object():
    with pytest.raises(InvalidRequest):
        parse(ChatCompletionRequest, [1, 2])


@pytest.mark.parametrize(
    ("patch", "temperature"),
    [
        ({}, 0.6),
        ({"temperature": 0}, 0.0),
        ({"do_sample": False, "temperature": 0.9}, 0.0),
        ({"temperature": 1.3}, 1.3),
    ],
)
def test_sampling_defaults_and_greedy(patch, temperature):
    gen = to_generation(parse(ChatCompletionRequest, {**BASE, **patch}))
    assert gen.sampling.temperature == temperature


def test_max_completion_tokens_and_stop_string():
    gen = to_generation(parse(ChatCompletionRequest, {**BASE, "max_completion_tokens": 7, "stop": "x"}))
    assert gen.sampling.max_tokens == 7 and gen.sampling.stop == ["x"]


def test_text_parts_joined_and_echoed_keys_dropped():
    msgs = [
        {"role": "developer", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": None,
            "refusal": None,
            "tool_calls": [
                {"id": "c", "type": "function", "index": 0, "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": "1"},
    ]
    gen = to_generation(parse(ChatCompletionRequest, {**BASE, "messages": msgs}))
    assert gen.messages[0] == {"role": "system", "content": "a\nb"}
    assert gen.messages[1]["tool_calls"] == [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ]
    assert gen.messages[2] == {"role": "tool", "content": "1", "tool_call_id": "c"}
