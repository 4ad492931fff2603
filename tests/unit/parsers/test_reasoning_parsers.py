"""``<think>`` reasoning split from content at every delta boundary."""

import pytest

from glmserve.engines.base import Reasoning, Text
from glmserve.parsers.reasoning import get_reasoning_parser

CASES = [
    (
        "think",
        "<think>\nThe user says hi.\n</think>\n\nHello! How can I help?",
        "\nThe user says hi.\n",
        "Hello! How can I help?",
    ),
    ("think", "<think></think>Direct answer.", "", "Direct answer."),
    ("think", "No tags at all <b>bold</b>", "", "No tags at all <b>bold</b>"),
    ("think", "<think>先想一想：3+4=7。</think>答案是7。", "先想一想：3+4=7。", "答案是7。"),
    (
        "deepseek_r1",
        "Reasoning without an opening tag.</think>\n\nAnswer.",
        "Reasoning without an opening tag.",
        "Answer.",
    ),
    ("think", "<think>cut off before closing", "cut off before closing", ""),
]


def run(name: str, pieces: list[str]) -> tuple[str, str]:
    parser = get_reasoning_parser(name)
    events = [ev for piece in pieces for ev in parser.feed(piece)] + parser.flush()
    reasoning = "".join(ev.delta for ev in events if isinstance(ev, Reasoning))
    text = "".join(ev.delta for ev in events if isinstance(ev, Text))
    return reasoning, text


@pytest.mark.parametrize(("name", "raw", "reasoning", "text"), CASES)
def test_every_split(name, raw, reasoning, text):
    for cut in range(len(raw) + 1):
        assert run(name, [raw[:cut], raw[cut:]]) == (reasoning, text), cut
    assert run(name, list(raw)) == (reasoning, text)


def test_reasoning_comes_before_content():
    parser = get_reasoning_parser("think")
    events = parser.feed("<think>a</think>b") + parser.flush()
    assert [type(e) for e in events] == [Reasoning, Text]
