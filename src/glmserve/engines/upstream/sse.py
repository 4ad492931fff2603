"""Incremental server-sent-events decoding, as the WHATWG rules have it.

Blocks arrive as the socket delivers them, split anywhere; ``feed`` returns the events that are
complete. Lines end in LF, CRLF or CR; ``data:`` lines of one event join with LF; an event is
dispatched on a blank line; ``:`` lines are comments (keep-alives); ``id``/``retry`` are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_PENDING_BYTES = 16 * 1024 * 1024


class SseTooLarge(ValueError):
    """An event grew past ``MAX_PENDING_BYTES`` without ending."""


@dataclass(frozen=True, slots=True)
class SseEvent:
    data: bytes
    event: str = "message"


class SseDecoder:
    __slots__ = ("_data", "_event", "_size", "_skip_lf", "_tail")

    def __init__(self) -> None:
        self._tail = b""
        self._data: list[bytes] = []
        self._event = ""
        self._size = 0
        self._skip_lf = False

    def feed(self, block: bytes) -> list[SseEvent]:
        if self._skip_lf and block.startswith(b"\n"):
            block = block[1:]
        self._skip_lf = False
        if b"\r" in block:
            self._skip_lf = block.endswith(b"\r")
            block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = (self._tail + block).split(b"\n") if self._tail else block.split(b"\n")
        self._tail = lines.pop()
        self._size += len(block)
        if self._size > MAX_PENDING_BYTES:
            raise SseTooLarge(f"an SSE event exceeded {MAX_PENDING_BYTES} bytes")
        events: list[SseEvent] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(SseEvent(b"\n".join(self._data), self._event or "message"))
                self._data, self._event, self._size = [], "", len(self._tail)
            elif line[0] != 58:  # not a ":" comment
                self._field(line)
        return events

    def _field(self, line: bytes) -> None:
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
