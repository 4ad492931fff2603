"""Upstream chunks onto events: reasoning fields, tool-call normalisation, finish and usage."""

from __future__ import annotations

from typing import Any

import pytest

from glmserve.engines.base import Finish, Logprobs, Reasoning, Text, ToolCall, Usage
from glmserve.engines.upstream.events import ChunkMapper, completion_events


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def run(chunks: list[dict[str, Any]]) -> list[Any]:
    mapper = ChunkMapper()
    return [e for c in chunks for e in mapper.chunk(c)] + mapper.end()


def test_openai_stream_with_trailing_usage_chunk() -> None:
    usage = {
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "total_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 3},
    }
    events = run(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hi"}),
            chunk({"content": "!"}),
            chunk({}, "stop"),
            {"choices": [], "usage": usage},
        ]
    )
    assert events == [Text("Hi"), Text("!"), Finish("stop"), Usage(5, 2, 3, 0)]


def test_zhipu_stream_usage_on_the_finish_chunk_and_role_everywhere() -> None:
    events = run(
        [
            chunk({"role": "assistant", "reasoning_content": "think"}),
            chunk({"role": "assistant", "content": "春"}),
            chunk(
                {"role": "assistant", "content": ""},
                "stop",
                usage={
                    "prompt_tokens": 8,
                    "completion_tokens": 262,
                    "completion_tokens_details": {"reasoning_tokens": 100},
                },
            ),
        ]
    )
    assert events == [Reasoning("think"), Text("春"), Finish("stop"), Usage(8, 262, 0, 100)]


def test_vllm_reasoning_field() -> None:
    assert run([chunk({"reasoning": "hmm"}), chunk({"content": "ok"}, "stop")]) == [
        Reasoning("hmm"),
        Text("ok"),
        Finish("stop"),
    ]


def test_usage_repeated_on_every_chunk_is_emitted_once_the_last() -> None:
    events = run(
        [
            chunk({"content": "a"}, usage={"prompt_tokens": 1, "completion_tokens": 1}),
            chunk({"content": "b"}, "length", usage={"prompt_tokens": 1, "completion_tokens": 2}),
        ]
    )
    assert [e for e in events if isinstance(e, Usage)] == [Usage(1, 2)]
    assert events[-2] == Finish("length")


def test_streamed_openai_tool_call_keeps_id_and_name_first() -> None:
    events = run(
        [
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": ""},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
            chunk({}, "tool_calls"),
        ]
    )
    assert events == [
        ToolCall(0, "call_1", "f", ""),
        ToolCall(0, None, None, '{"a":'),
        ToolCall(0, None, None, "1}"),
        Finish("tool_calls"),
    ]


def test_whole_calls_without_index_or_id_and_object_arguments() -> None:
    events = run(
        [
            chunk(
                {
                    "tool_calls": [
                        {"function": {"name": "f", "arguments": {"city": "北京"}}},
                        {"id": "z1", "function": {"name": "g", "arguments": "{}"}},
                    ]
                }
            ),
            chunk({}, "stop"),
        ]
    )
    first, second, finish = events
    assert isinstance(first, ToolCall) and first.index == 0 and first.name == "f"
    assert first.id and first.id.startswith("call_")
    assert first.arguments_delta == '{"city":"北京"}'
    assert second == ToolCall(1, "z1", "g", "{}")
    assert finish == Finish("tool_calls"), "a call with finish_reason stop is still tool_calls"


def test_arguments_before_the_name_are_held() -> None:
    events = run(
        [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x"'}}]}),
            chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": ": 1}"}}]}),
            chunk({}, "tool_calls"),
        ]
    )
    assert events == [ToolCall(0, "c", "f", '{"x": 1}'), Finish("tool_calls")]


def test_repeated_id_continues_the_same_call() -> None:
    events = run(
        [
            chunk({"tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{"}}]}),
            chunk({"tool_calls": [{"id": "c", "function": {"arguments": "}"}}]}),
        ]
    )
    assert events[:2] == [ToolCall(0, "c", "f", "{"), ToolCall(0, None, None, "}")]


@pytest.mark.parametrize(
    ("upstream", "ours"),
    [("function_call", "tool_calls"), ("eos", "stop"), ("sensitive", "sensitive"), ("length", "length")],
)
def test_finish_reasons(upstream: str, ours: str) -> None:
    assert run([chunk({}, upstream)]) == [Finish(ours)]


def test_other_choices_and_junk_are_ignored() -> None:
    events = run(
        [
            {"choices": [{"index": 1, "delta": {"content": "other"}}]},
            {"choices": None, "usage": None},
            chunk({"content": None, "reasoning_content": None}),
            chunk({"content": "mine"}),
        ]
    )
    assert events == [Text("mine"), Finish("stop")]


def test_non_object_chunk_is_an_error() -> None:
    with pytest.raises(ValueError):
        ChunkMapper().chunk([1, 2])


def test_whole_completion() -> None:
    body = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "",
                    "reasoning_content": "r",
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
    }
    assert completion_events(body) == [
        Reasoning("r"),
        ToolCall(0, "c1", "f", "{}"),
        Finish("tool_calls"),
        Usage(3, 4),
    ]


def test_completion_without_choices_is_an_error() -> None:
    with pytest.raises(ValueError):
        completion_events({"id": "x", "choices": []})


def test_logprobs_come_before_the_delta_they_score_with_only_the_wire_fields() -> None:
    top = [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "id": 5}, {"token": "Yo", "logprob": -2.0}]
    scored = {"content": [{"token": "Hi", "logprob": -0.1, "top_logprobs": top, "id": 5}]}
    junk = {"content": [{"token": 3, "logprob": -1}, {"token": "x", "logprob": "bad"}, "nope"]}
    events = run([
        {"choices": [{"index": 0, "delta": {"content": "Hi"}, "logprobs": scored}]},
        {"choices": [{"index": 0, "delta": {"content": "!"}, "logprobs": junk}]},
        chunk({"content": "?"}, logprobs=None),
    ])  # fmt: skip

    hi = {"token": "Hi", "logprob": -0.1, "bytes": [72, 105]}
    yo = {"token": "Yo", "logprob": -2.0, "bytes": [89, 111]}  # bytes from the token when absent
    assert events == [
        Logprobs(({**hi, "top_logprobs": [hi, yo]},)),
        Text("Hi"),
        Text("!"),
        Text("?"),
        Finish("stop"),
    ]
