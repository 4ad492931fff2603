"""GLM-4.5/4.6 XML style: ``<tool_call>name<arg_key>k</arg_key><arg_value>v</arg_value></tool_call>``."""

from __future__ import annotations

import json
import re

from glmserve.parsers.tool_calls import BlockFormat, Call, loads, register

START, END = "<tool_call>", "</tool_call>"
_ARG = re.compile(r"<arg_key>(.*?)</arg_key>\s*<arg_value>(.*?)</arg_value>", re.DOTALL)


def find_end(block: str) -> int | None:
    at = block.find(END)
    return None if at < 0 else at + len(END)


def parse(block: str, names: frozenset[str]) -> list[Call] | None:
    inner = block[len(START) :]
    inner = inner[: -len(END)] if inner.endswith(END) else inner
    name, _, rest = inner.partition("<arg_key>")
    name = name.strip()
    if name not in names:
        return None
    args: dict[str, object] = {}
    for key, raw in _ARG.findall("<arg_key>" + rest if rest else ""):
        value = loads(raw)
        # Strings come bare; numbers, booleans, arrays and objects come as JSON.
        args[key.strip()] = raw if value is None and raw != "null" else value
    return [(name, json.dumps(args, ensure_ascii=False))]


GLM45 = register(BlockFormat("glm45", START, find_end, parse))
