"""A fenced JSON block, which is what Qwen2.5-Coder actually writes when it calls a function."""

from __future__ import annotations

from glmserve.parsers.tool_calls import BlockFormat, Call, calls_from_json, loads, register

FENCE = "```"


def find_end(block: str) -> int | None:
    at = block.find(FENCE, len(FENCE))
    return None if at < 0 else at + len(FENCE)


def parse(block: str, names: frozenset[str]) -> list[Call] | None:
    inner = block[len(FENCE) :]
    inner = inner[: -len(FENCE)] if inner.endswith(FENCE) else inner
    first_line, _, rest = inner.partition("\n")
    if first_line.strip().lower() in {"json", ""}:
        inner = rest
    return calls_from_json(loads(inner.strip()), names)


FENCED_JSON = register(BlockFormat("fenced_json", FENCE, find_end, parse))
