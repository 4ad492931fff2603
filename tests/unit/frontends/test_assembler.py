from glmserve.engines.base import Finish, Reasoning, Text, ToolCall, Usage
from glmserve.frontends.chat.render import ChunkEncoder, CompletionBuilder, Envelope


def _env() -> Envelope:
    return Envelope(id="cid", request_id="rid", model="glm-4.6", created=1)


def _run(include_usage: bool) -> list[dict]:
    enc = ChunkEncoder(_env(), include_usage)
    events = [Text("He"), Text("llo"), Finish("stop"), Usage(5, 2, 1)]
    out = [c for ev in events for c in enc.encode(ev)]
    return out + enc.finish()


def test_role_only_in_first_delta_and_object_on_every_chunk():
    chunks = _run(False)
    assert [("role" in c["choices"][0]["delta"]) for c in chunks] == [True, False, False]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "cid" for c in chunks)


def test_usage_on_finish_chunk_zhipu_style():
    chunks = _run(False)
    with_usage = [c for c in chunks if "usage" in c]
    assert len(with_usage) == 1
    assert with_usage[0]["choices"][0]["finish_reason"] == "stop"
    assert with_usage[0]["usage"]["total_tokens"] == 7
    assert with_usage[0]["usage"]["prompt_tokens_details"] == {"cached_tokens": 1}


def test_usage_on_trailing_empty_choices_chunk_openai_style():
    chunks = _run(True)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2
    assert sum("usage" in c for c in chunks) == 1
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_finish_without_usage_still_sends_finish_chunk():
    enc = ChunkEncoder(_env(), False)
    assert enc.encode(Finish("length")) == []
    (last,) = enc.finish()
    assert last["choices"][0]["finish_reason"] == "length" and "usage" not in last


def test_tool_call_first_delta_has_id_name_and_string_arguments():
    enc = ChunkEncoder(_env(), False)
    first = enc.encode(ToolCall(0, "call_1", "f", ""))[0]["choices"][0]["delta"]["tool_calls"][0]
    later = enc.encode(ToolCall(0, None, None, '{"a":1}'))[0]["choices"][0]["delta"]["tool_calls"][0]
    assert first == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    assert later == {"index": 0, "function": {"arguments": '{"a":1}'}}


def test_builder_joins_text_and_tool_arguments():
    b = CompletionBuilder(_env())
    for ev in [
        Text("a"),
        Text("b"),
        ToolCall(0, "c", "f", "{"),
        ToolCall(0, None, None, "}"),
        Finish("tool_calls"),
    ]:
        b.add(ev)
    b.add(Usage(3, 4))
    body = b.build()
    msg = body["choices"][0]["message"]
    assert msg["content"] == "ab" and msg["tool_calls"][0]["function"]["arguments"] == "{}"
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["usage"]["total_tokens"] == 7 and body["request_id"] == "rid"


def test_every_delta_and_message_carries_reasoning_content():
    """The docs' thinking loop reads `delta.reasoning_content` on every chunk: null, never absent."""
    enc = ChunkEncoder(_env(), False)
    events = [Reasoning("think"), Text("answer"), ToolCall(0, "c", "f", "{}"), Finish("stop"), Usage(5, 3)]
    deltas = [c["choices"][0]["delta"] for ev in events for c in enc.encode(ev)]
    assert [d["reasoning_content"] for d in deltas] == ["think", None, None, None]
    plain, thought = CompletionBuilder(_env()), CompletionBuilder(_env())
    plain.add(Text("hi"))
    thought.add(Reasoning("hm"))
    assert plain.build()["choices"][0]["message"]["reasoning_content"] is None
    assert thought.build()["choices"][0]["message"]["reasoning_content"] == "hm"
