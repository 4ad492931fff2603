"""Start-up configuration errors: one ``ConfigError``, one line naming the key and its source.

pydantic reports a location (``limits.rmp``); a user needs to know where they wrote it: the TOML
file, or the ``GLMSERVE_*`` variable that set it. ``unknown_env`` catches variables that name no
setting at all, which pydantic-settings would silently ignore.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel, ValidationError

ENV_PREFIX = "GLMSERVE_"
# GLMSERVE_* variables read by the test suite and the benchmarks, never by the server.
NOT_SETTINGS = ("GLMSERVE_TEST_",)


class ConfigError(Exception):
    """The configuration cannot be served; the message is one line for the operator."""


def _dotted(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _env_name(loc: tuple[int | str, ...], env: Mapping[str, str]) -> str | None:
    """The GLMSERVE_* variable that carried ``loc`` (or the part of it that holds it)."""
    names = {k.upper(): k for k in env if k.upper().startswith(ENV_PREFIX)}
    for end in range(len(loc), 0, -1):
        name = ENV_PREFIX + "__".join(str(p).upper() for p in loc[:end])
        if name in names:
            return names[name]
    return None


def source_of(loc: tuple[int | str, ...], config_file: Path | None, env: Mapping[str, str]) -> str:
    name = _env_name(loc, env)
    if name is not None:
        return f"from ${name}"
    return f"in {config_file}" if config_file is not None else "from the command line"


def describe(exc: ValidationError, config_file: Path | None, env: Mapping[str, str]) -> ConfigError:
    first = exc.errors(include_url=False, include_input=False)[0]
    loc = tuple(first["loc"])
    where = source_of(loc, config_file, env)
    if first["type"] == "extra_forbidden":
        return ConfigError(f"unknown setting '{_dotted(loc)}' ({where})")
    message = str(first["msg"]).removeprefix("Value error, ")
    return ConfigError(f"invalid setting '{_dotted(loc)}' ({where}): {message}")


def unknown_env(model: type[BaseModel], env: Mapping[str, str]) -> ConfigError | None:
    """A GLMSERVE_* variable whose first part names no top-level setting."""
    fields = {name.upper() for name in model.model_fields}
    for key in sorted(env):
        upper = key.upper()
        if not upper.startswith(ENV_PREFIX) or upper.startswith(NOT_SETTINGS):
            continue
        head = upper.removeprefix(ENV_PREFIX).split("__", 1)[0]
        if head not in fields:
            return ConfigError(f"unknown setting '{head.lower()}' (from ${key})")
    return None
