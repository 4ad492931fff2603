"""Streaming extraction of tool calls from text deltas, safe at every delta boundary."""

from __future__ import annotations

from glmserve.engines.base import Event, Text, ToolCall
from glmserve.ids import hex_id
from glmserve.parsers.holdback import split_safe
from glmserve.parsers.tool_calls import BlockFormat


def new_call_id() -> str:
    return "call_" + hex_id(12)


class ToolCallExtractor:
    """Text in; text and ``ToolCall`` events out. Blocks that are not calls stay text."""

    def __init__(self, formats: list[BlockFormat], names: frozenset[str]):
        self._formats = formats
        self._names = names
        self._buf = ""
        self._block: BlockFormat | None = None
        self._at_start = True
        self.calls = 0

    def _starts(self) -> list[BlockFormat]:
        return [f for f in self._formats if self._at_start or not f.only_at_start]

    def feed(self, text: str) -> list[Event]:
        self._buf += text
        events: list[Event] = []
        while self._buf:
            if self._block is None:
                if not self._scan(events):
                    break
            elif not self._close(events, final=False):
                break
        return events

    def _scan(self, events: list[Event]) -> bool:
        """Text state: emit text up to the earliest block start; False when more input is needed."""
        if self._at_start and not self._buf.strip():
            return False
        found = [(self._buf.find(f.start), f) for f in self._starts()]
        found = [
            (at, f) for at, f in found if at >= 0 and (not f.only_at_start or not self._buf[:at].strip())
        ]
        if found:
            at, fmt = min(found, key=lambda item: item[0])
            self._text(self._buf[:at], events)
            self._buf, self._block = self._buf[at:], fmt
            return True
        emit, self._buf = split_safe(self._buf, tuple(f.start for f in self._starts()))
        self._text(emit, events)
        return False

    def _close(self, events: list[Event], final: bool) -> bool:
        """Block state: once the block is complete, emit its calls (or its text)."""
        assert self._block is not None
        end = self._block.find_end(self._buf)
        if end is None and not final:
            return False
        block, self._buf = (self._buf, "") if end is None else (self._buf[:end], self._buf[end:])
        calls = self._block.parse(block, self._names)
        self._block = None
        if calls is None:
            self._text(block, events)
            return True
        for name, arguments in calls:
            events.append(ToolCall(self.calls, new_call_id(), name, ""))
            events.append(ToolCall(self.calls, None, None, arguments))
            self.calls += 1
        self._at_start = False
        self._buf = self._buf.lstrip() if not self._buf.strip() else self._buf
        return True

    def _text(self, text: str, events: list[Event]) -> None:
        if text.strip():
            self._at_start = False
            events.append(Text(text))
        elif text and not self._at_start:
            events.append(Text(text))

    def flush(self) -> list[Event]:
        events: list[Event] = []
        if self._block is not None:
            self._close(events, final=True)
        if self._buf:
            rest, self._buf = self._buf, ""
            if self.calls == 0 or rest.strip():
                events.append(Text(rest))
        return events
