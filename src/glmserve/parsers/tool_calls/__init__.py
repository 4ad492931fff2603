"""Tool-call formats: a dict and a decorator; one file per format, grouped per model family."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Call = tuple[str, str]  # (function name, arguments as a JSON string)

FORMATS: dict[str, BlockFormat] = {}
FAMILIES: dict[str, tuple[str, ...]] = {
    "qwen": ("hermes", "fenced_json", "bare_json"),
    "glm45": ("glm45",),
    "hermes": ("hermes",),
    "json": ("bare_json", "fenced_json"),
}


@dataclass(frozen=True, slots=True)
class BlockFormat:
    """A tool-call block: where it starts, where it ends, how its text becomes calls.

    ``find_end(block)`` gets the text from the start marker on and returns the end index of a
    complete block or ``None``; ``parse(block, names)`` returns the calls or ``None`` when the
    block is not a call of a declared function (it is then plain text).
    """

    name: str
    start: str
    find_end: Callable[[str], int | None]
    parse: Callable[[str, frozenset[str]], list[Call] | None]
    only_at_start: bool = False


def register(fmt: BlockFormat) -> BlockFormat:
    FORMATS[fmt.name] = fmt
    return fmt


def formats_for(family: str) -> list[BlockFormat]:
    from glmserve.parsers.tool_calls import bare_json, fenced_json, glm45, hermes  # noqa: F401

    return [FORMATS[name] for name in FAMILIES[family]]


def calls_from_json(value: Any, names: frozenset[str]) -> list[Call] | None:
    """``{"name", "arguments"|"parameters"}`` or a list of them, naming declared functions only."""
    items: Iterable[Any] = value if isinstance(value, list) else [value]
    calls: list[Call] = []
    for item in items:
        if not isinstance(item, dict) or item.get("name") not in names:
            return None
        args = item.get("arguments", item.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError:
                return None
        if not isinstance(args, dict):
            return None
        calls.append((item["name"], json.dumps(args, ensure_ascii=False)))
    return calls or None


def loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None
