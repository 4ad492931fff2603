"""A bare JSON object opening the answer, and what grammar-constrained calls produce."""

from __future__ import annotations

from glmserve.parsers.tool_calls import BlockFormat, Call, calls_from_json, loads, register


def find_end(block: str) -> int | None:
    """End of the first balanced JSON value in ``block`` (string- and escape-aware)."""
    depth, in_string, escaped = 0, False, False
    for i, ch in enumerate(block):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def parse(block: str, names: frozenset[str]) -> list[Call] | None:
    return calls_from_json(loads(block), names)


BARE_JSON = register(BlockFormat("bare_json", "{", find_end, parse, only_at_start=True))
