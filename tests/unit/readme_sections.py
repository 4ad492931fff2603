"""The README's tables and code, parsed, so that a docs test checks a name where it belongs.

A bare substring check passes for ``rpm`` anywhere in the README; these helpers find a setting in
the first column of the settings table, an option in its command's row of the command table, a
field as a backticked name or a TOML key.
"""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
_TICKED = re.compile(r"`([^`]+)`")
_CELL_BORDER = re.compile(r"(?<!\\)\|")  # a pipe, unless escaped as \| inside a cell
_TOML_KEY = re.compile(r"(?:^|[{,])\s*([A-Za-z_][\w]*)\s*=", re.MULTILINE)


def section(title: str) -> str:
    """The text under ``## title`` up to the next ``## `` heading."""
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in ``text`` (header and rule rows included)."""
    return [
        [cell.strip().replace("\\|", "|") for cell in _CELL_BORDER.split(line.strip().strip("|"))]
        for line in text.splitlines()
        if line.lstrip().startswith("|")
    ]


def settings_table() -> dict[str, set[str]]:
    """Each setting named in the first column of the settings table -> its environment variables.

    ``…__X`` abbreviates the row's first variable with its last ``__`` part replaced by ``X``.
    """
    table: dict[str, set[str]] = {}
    for cells in table_rows(section("Settings")):
        if len(cells) < 3:
            continue
        names, envs = _TICKED.findall(cells[0]), [e.split("=")[0] for e in _TICKED.findall(cells[1])]
        full = [e for e in envs if e.startswith("GLMSERVE_")]
        prefix = full[0].rsplit("__", 1)[0] if full else ""
        expanded = {prefix + e[1:] if e.startswith("…") else e for e in envs}
        for name in names:
            table[name] = expanded
    return table


def command_row(command: str) -> str:
    """The first cell of the command table row for ``glmserve COMMAND``."""
    for cells in table_rows(section("Command line")):
        first = _TICKED.findall(cells[0])
        if first and (first[0] == f"glmserve {command}" or first[0].startswith(f"glmserve {command} ")):
            return first[0]
    raise AssertionError(f"no row for glmserve {command} in the README's command table")


def has_option(row: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", row) is not None


def documented_names(text: str) -> set[str]:
    """Backticked names in the prose (each word of ``a.b`` or ``a = 1`` too), TOML keys in the code."""
    pieces = text.split("```")
    prose, code = "".join(pieces[0::2]), "".join(pieces[1::2])
    names = set(_TOML_KEY.findall(code))
    for ticked in _TICKED.findall(prose) + _TICKED.findall(code):  # code: backticks in its comments
        names.update(re.findall(r"[A-Za-z_]\w*", ticked))
    return names
