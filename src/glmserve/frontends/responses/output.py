"""Events → ``output`` items, and the stream events that announce them, in one pass.

``OutputBuilder`` is fed the pipeline's events and returns, for each, the Responses stream events
it causes (without ``sequence_number``: the rendering numbers them). The non-streamed answer is
built by the same code with the stream events thrown away, so a stream's final response always
equals what the JSON answer would have been.

Items open and close as the kind of event changes: reasoning, then an assistant ``message`` with
one ``output_text`` part, then one ``function_call`` per tool-call index (calls stay open until
text follows or the answer ends, so interleaved argument deltas still land on their own call).
Reasoning goes to the item's ``content`` as ``reasoning_text``, or, when the request asked for
``reasoning.summary``, to its ``summary`` as ``summary_text``.
"""

from __future__ import annotations

from typing import Any

from glmserve.engines.base import Event, Finish, Reasoning, Text, ToolCall, Usage
from glmserve.frontends.responses.items import new_id

Frame = dict[str, Any]


class _Open:
    """An item being written: its index in ``output``, and the text or arguments so far."""

    def __init__(self, index: int, item: dict[str, Any]) -> None:
        self.index = index
        self.item = item
        self.parts: list[str] = []

    @property
    def id(self) -> str:
        return str(self.item["id"])

    @property
    def text(self) -> str:
        return "".join(self.parts)


class OutputBuilder:
    def __init__(self, *, summary: bool) -> None:
        self.summary = summary
        self.output: list[dict[str, Any]] = []
        self.finish_reason = "stop"
        self.usage: Usage | None = None
        self._current: _Open | None = None  # the open reasoning or message item
        self._calls: dict[int, _Open] = {}  # open function calls by tool-call index

    # -- feeding ---------------------------------------------------------------------------
    def feed(self, ev: Event) -> list[Frame]:
        match ev:
            case Reasoning(delta):
                return self._reasoning(delta)
            case Text(delta):
                return self._text(delta)
            case ToolCall():
                return self._call(ev)
            case Finish(reason):
                self.finish_reason = reason
            case Usage():
                self.usage = ev
        return []

    def finish(self, status: str = "completed") -> list[Frame]:
        """Close every open item; ``status`` is the items' (``incomplete`` when cut short)."""
        return self._close_current(status) + self._close_calls(status)

    def _open(self, item: dict[str, Any]) -> tuple[_Open, Frame]:
        opened = _Open(len(self.output), item)
        self.output.append(item)
        return opened, {
            "type": "response.output_item.added",
            "output_index": opened.index,
            "item": dict(item),
        }

    def _reasoning(self, delta: str) -> list[Frame]:
        frames: list[Frame] = []
        if self._current is None or self._current.item["type"] != "reasoning":
            frames += self._close_current() + self._close_calls()
            item = {"id": new_id("rs"), "type": "reasoning", "summary": [], "status": "in_progress"}
            if not self.summary:
                item["content"] = []
            self._current, added = self._open(item)
            frames += [added, self._part_event("added", self._current, "")]
        self._current.parts.append(delta)
        return [*frames, self._delta_event(self._current, delta)]

    def _text(self, delta: str) -> list[Frame]:
        frames: list[Frame] = []
        if self._current is None or self._current.item["type"] != "message":
            frames += self._close_current() + self._close_calls()
            item = {
                "id": new_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
            self._current, added = self._open(item)
            frames += [added, self._part_event("added", self._current, "")]
        self._current.parts.append(delta)
        return [*frames, self._delta_event(self._current, delta)]

    def _call(self, ev: ToolCall) -> list[Frame]:
        frames: list[Frame] = []
        call = self._calls.get(ev.index)
        if call is None:
            frames += self._close_current()
            item = {
                "id": new_id("fc"),
                "type": "function_call",
                "call_id": ev.id or new_id("call"),
                "name": ev.name or "",
                "arguments": "",
                "status": "in_progress",
            }
            call, added = self._open(item)
            self._calls[ev.index] = call
            frames.append(added)
        elif ev.name and not call.item["name"]:
            call.item["name"] = ev.name
        if ev.arguments_delta:
            call.parts.append(ev.arguments_delta)
            frames.append(
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": call.id,
                    "output_index": call.index,
                    "delta": ev.arguments_delta,
                }
            )
        return frames

    # -- closing ---------------------------------------------------------------------------
    def _close_current(self, status: str = "completed") -> list[Frame]:
        current, self._current = self._current, None
        if current is None:
            return []
        text, item = current.text, current.item
        if item["type"] == "message":
            item["content"] = [_output_text(text)]
            done = {
                "type": "response.output_text.done",
                "item_id": current.id,
                "output_index": current.index,
                "content_index": 0,
                "text": text,
                "logprobs": [],
            }
        elif self.summary:
            item["summary"] = [{"type": "summary_text", "text": text}]
            done = {
                "type": "response.reasoning_summary_text.done",
                "item_id": current.id,
                "output_index": current.index,
                "summary_index": 0,
                "text": text,
            }
        else:
            item["content"] = [{"type": "reasoning_text", "text": text}]
            done = {
                "type": "response.reasoning_text.done",
                "item_id": current.id,
                "output_index": current.index,
                "content_index": 0,
                "text": text,
            }
        item["status"] = status
        return [done, self._part_event("done", current, text), self._item_done(current)]

    def _close_calls(self, status: str = "completed") -> list[Frame]:
        frames: list[Frame] = []
        for call in self._calls.values():
            call.item.update(arguments=call.text, status=status)
            frames.append(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": call.id,
                    "output_index": call.index,
                    "name": call.item["name"],
                    "arguments": call.text,
                }
            )
            frames.append(self._item_done(call))
        self._calls = {}
        return frames

    @staticmethod
    def _item_done(opened: _Open) -> Frame:
        return {"type": "response.output_item.done", "output_index": opened.index, "item": dict(opened.item)}

    def _part_event(self, phase: str, opened: _Open, text: str) -> Frame:
        where = {"item_id": opened.id, "output_index": opened.index}
        if opened.item["type"] == "message":
            return {
                "type": f"response.content_part.{phase}",
                **where,
                "content_index": 0,
                "part": _output_text(text),
            }
        if self.summary:
            part = {"type": "summary_text", "text": text}
            return {
                "type": f"response.reasoning_summary_part.{phase}",
                **where,
                "summary_index": 0,
                "part": part,
            }
        part = {"type": "reasoning_text", "text": text}
        return {"type": f"response.content_part.{phase}", **where, "content_index": 0, "part": part}

    def _delta_event(self, opened: _Open, delta: str) -> Frame:
        where = {"item_id": opened.id, "output_index": opened.index, "delta": delta}
        if opened.item["type"] == "message":
            return {"type": "response.output_text.delta", **where, "content_index": 0, "logprobs": []}
        if self.summary:
            return {"type": "response.reasoning_summary_text.delta", **where, "summary_index": 0}
        return {"type": "response.reasoning_text.delta", **where, "content_index": 0}


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def output_text(output: list[dict[str, Any]]) -> str:
    """The SDKs' ``output_text``: every ``output_text`` part of every message, joined."""
    return "".join(
        part["text"]
        for item in output
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )
