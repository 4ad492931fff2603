"""SSE decoding: events split anywhere, every line ending, comments, multi-line data, event names."""

from __future__ import annotations

import pytest

from glmserve.engines.upstream.sse import SseDecoder, SseEvent, SseTooLarge

STREAM = (
    b'data: {"a": 1}\n\n: ping\n\ndata: {"b": 2}\n\nevent: error\ndata: {"error": {}}\n\ndata: [DONE]\n\n'
)
EXPECTED = [
    SseEvent(b'{"a": 1}'),
    SseEvent(b'{"b": 2}'),
    SseEvent(b'{"error": {}}', "error"),
    SseEvent(b"[DONE]"),
]


def feed_all(decoder: SseDecoder, blocks: list[bytes]) -> list[SseEvent]:
    return [event for block in blocks for event in decoder.feed(block)]


def test_whole_stream_in_one_block() -> None:
    assert SseDecoder().feed(STREAM) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16])
def test_any_split_gives_the_same_events(size: int) -> None:
    blocks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert feed_all(SseDecoder(), blocks) == EXPECTED


@pytest.mark.parametrize("ending", [b"\r\n", b"\r"])
def test_crlf_and_cr_line_endings(ending: bytes) -> None:
    stream = STREAM.replace(b"\n", ending)
    assert SseDecoder().feed(stream) == EXPECTED
    blocks = [stream[i : i + 1] for i in range(len(stream))]
    assert feed_all(SseDecoder(), blocks) == EXPECTED


def test_multi_line_data_joins_with_newline_and_no_space_is_fine() -> None:
    events = SseDecoder().feed(b"data:line one\ndata: line two\nid: 7\nretry: 10\n\n")
    assert events == [SseEvent(b"line one\nline two")]


def test_incomplete_event_is_held_until_its_blank_line() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b'data: {"a": 1}\n') == []
    assert decoder.feed(b"\n") == [SseEvent(b'{"a": 1}')]


def test_blank_lines_without_data_dispatch_nothing() -> None:
    assert SseDecoder().feed(b"\n\n\nevent: x\n\n") == []


def test_an_endless_event_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("glmserve.engines.upstream.sse.MAX_PENDING_BYTES", 100)
    decoder = SseDecoder()
    with pytest.raises(SseTooLarge):
        for _ in range(20):
            decoder.feed(b"data: " + b"x" * 10)
