"""``<think>…</think>`` reasoning: GLM-4.5+, Qwen3, DeepSeek-R1 families.

DeepSeek-R1 style templates open the ``<think>`` tag in the prompt, so the output starts inside
the reasoning; ``deepseek_r1`` covers that.
"""

from __future__ import annotations

from glmserve.engines.base import Event, Reasoning, Text
from glmserve.parsers.holdback import split_safe
from glmserve.parsers.reasoning import register

OPEN, CLOSE = "<think>", "</think>"


class ThinkTagParser:
    def __init__(self, starts_inside: bool = False):
        self._inside = starts_inside
        self._buf = ""
        self._after_close = False

    def feed(self, text: str) -> list[Event]:
        self._buf += text
        events: list[Event] = []
        while self._buf:
            marker = CLOSE if self._inside else OPEN
            at = self._buf.find(marker)
            if at >= 0:
                before, self._buf = self._buf[:at], self._buf[at + len(marker) :]
                events += self._emit(before)
                self._inside = not self._inside
                self._after_close = not self._inside
                continue
            emit, self._buf = split_safe(self._buf, (marker,))
            events += self._emit(emit)
            break
        return events

    def _emit(self, text: str) -> list[Event]:
        if not text:
            return []
        if self._inside:
            return [Reasoning(text)]
        if self._after_close:
            text = text.lstrip("\n")
            if not text:
                return []
            self._after_close = False
        return [Text(text)]

    def flush(self) -> list[Event]:
        rest, self._buf = self._buf, ""
        return self._emit(rest)


@register("think")
def think() -> ThinkTagParser:
    return ThinkTagParser()


@register("deepseek_r1")
def deepseek_r1() -> ThinkTagParser:
    return ThinkTagParser(starts_inside=True)
