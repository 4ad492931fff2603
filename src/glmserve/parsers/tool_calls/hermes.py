"""Hermes style, as Qwen2.5/Qwen3 templates ask: ``<tool_call>{"name": …, "arguments": …}</tool_call>``."""

from __future__ import annotations

from glmserve.parsers.tool_calls import BlockFormat, Call, calls_from_json, loads, register

START, END = "<tool_call>", "</tool_call>"


def find_end(block: str) -> int | None:
    at = block.find(END)
    return None if at < 0 else at + len(END)


def parse(block: str, names: frozenset[str]) -> list[Call] | None:
    inner = block[len(START) :]
    inner = inner[: -len(END)] if inner.endswith(END) else inner
    return calls_from_json(loads(inner.strip()), names)


HERMES = register(BlockFormat("hermes", START, find_end, parse))
