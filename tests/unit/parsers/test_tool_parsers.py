"""Tool-call formats fed real model outputs, split at every possible delta boundary."""

import json

import pytest

from glmserve.engines.base import Text, ToolCall
from glmserve.parsers.tool_calls import formats_for
from glmserve.parsers.tool_calls.extractor import ToolCallExtractor

NAMES = frozenset({"get_weather", "get_time"})

# (family, raw model output, expected calls, expected text)
CASES = [
    # Qwen2.5-Coder-0.5B with tool_choice auto, verbatim.
    (
        "qwen",
        '```json\n{\n  "name": "get_weather",\n  "arguments": {\n    "city": "Beijing"\n  }\n}\n```',
        [("get_weather", {"city": "Beijing"})],
        "",
    ),
    # The same model under a grammar (tool_choice required), verbatim.
    (
        "qwen",
        '{"name": "get_weather", "arguments": {"city": "Beijing"}}',
        [("get_weather", {"city": "Beijing"})],
        "",
    ),
    (
        "qwen",
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京"}}\n</tool_call>',
        [("get_weather", {"city": "北京"})],
        "",
    ),
    ("qwen", '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>', [("get_time", {})], ""),
    (
        "qwen",
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "A"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": "{}"}\n</tool_call>',
        [("get_weather", {"city": "A"}), ("get_time", {})],
        "",
    ),
    (
        "qwen",
        "Sure! Here is code:\n```python\nprint('{x}')\n```\nDone.",
        [],
        "Sure! Here is code:\n```python\nprint('{x}')\n```\nDone.",
    ),
    (
        "qwen",
        '```json\n{"name": "unknown_fn", "arguments": {}}\n```',
        [],
        '```json\n{"name": "unknown_fn", "arguments": {}}\n```',
    ),
    ("qwen", 'The answer is {"a": 1} ok', [], 'The answer is {"a": 1} ok'),
    (
        "glm45",
        "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>北京</arg_value>\n</tool_call>",
        [("get_weather", {"city": "北京"})],
        "",
    ),
    (
        "glm45",
        "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n"
        "<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n</tool_call>",
        [("get_weather", {"city": "Paris", "days": 3})],
        "",
    ),
    ("glm45", "<tool_call>get_time\n</tool_call>", [("get_time", {})], ""),
    ("glm45", "我来查一下。<tool_call>get_time\n</tool_call>", [("get_time", {})], "我来查一下。"),
]


def run(family: str, pieces: list[str]) -> tuple[list[tuple[str, dict]], str, list[ToolCall]]:
    ex = ToolCallExtractor(formats_for(family), NAMES)
    events = [ev for piece in pieces for ev in ex.feed(piece)] + ex.flush()
    calls: dict[int, list] = {}
    deltas = [ev for ev in events if isinstance(ev, ToolCall)]
    for ev in deltas:
        call = calls.setdefault(ev.index, [ev.name, ""])
        call[1] += ev.arguments_delta
    text = "".join(ev.delta for ev in events if isinstance(ev, Text))
    return [(name, json.loads(args)) for name, args in calls.values()], text, deltas


@pytest.mark.parametrize(("family", "raw", "calls", "text"), CASES)
def test_every_split_gives_the_same_result(family, raw, calls, text):
    for cut in range(len(raw) + 1):
        got_calls, got_text, _ = run(family, [raw[:cut], raw[cut:]])
        assert (got_calls, got_text.strip()) == (calls, text.strip()), cut
    got_calls, got_text, _ = run(family, list(raw))
    assert (got_calls, got_text.strip()) == (calls, text.strip())


def test_first_delta_per_index_has_id_and_name_then_string_arguments():
    _, _, deltas = run("qwen", [CASES[4][1]])
    firsts = [d for d in deltas if d.id is not None]
    assert [d.name for d in firsts] == ["get_weather", "get_time"]
    assert all(d.id.startswith("call_") and d.arguments_delta == "" for d in firsts)
    assert all(isinstance(d.arguments_delta, str) for d in deltas)
