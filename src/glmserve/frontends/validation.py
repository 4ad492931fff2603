"""Turn a parsed JSON body into a wire model, or a 400 that names the offending field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from glmserve.errors import InvalidField, InvalidRequest

M = TypeVar("M", bound=BaseModel)


def _is_union_tag(part: str) -> bool:
    """Pydantic names union members in ``loc`` (``literal[...]``, ``str``, model classes)."""
    tags = ("function-", "str", "list[", "dict[", "literal[", "json-or-python", "int", "float", "bool")
    return part.startswith(tags) or part[:1].isupper()


def field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not _is_union_tag(part):
            path += f".{part}" if path else part
    return path


def parse(model: type[M], body: Any) -> M:
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        param = field_path(tuple(first["loc"]))
        raise InvalidField(f"invalid value for '{param}': {first['msg']}", param=param) from None
