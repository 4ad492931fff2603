"""Input items: parsed one by one, refused with a 400 that names them, stored in the spec's shape.

``normalize`` turns the ``input`` of a request (a string, or a list of items) into the list of
item resources that ``GET /responses/{id}/input_items`` serves back (every item with an ``id``
and a ``status``), and that ``translate`` turns into chat messages. Only what glmserve can act
on is accepted: messages (text and image parts), ``function_call``, ``function_call_output`` and
``reasoning`` items. Anything else (built-in tools' calls, ``item_reference``, files) is a 400
naming the item, never dropped in silence.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from glmserve.errors import InvalidField
from glmserve.ids import hex_id

ITEM_PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}
_TEXT_PARTS = ("input_text", "output_text", "text")


def new_id(prefix: str) -> str:
    return f"{prefix}_{hex_id(24)}"


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Part(_In):
    type: str
    text: str | None = None
    refusal: str | None = None
    image_url: str | None = None
    file_id: str | None = None
    detail: str | None = None


class MessageItem(_In):
    type: Literal["message"] = "message"
    id: str | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[Part]


class FunctionCallItem(_In):
    type: Literal["function_call"]
    id: str | None = None
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str = ""


class FunctionCallOutputItem(_In):
    type: Literal["function_call_output"]
    id: str | None = None
    call_id: str = Field(min_length=1)
    output: str | list[Part]


class TextPart(_In):
    type: str
    text: str


class ReasoningItem(_In):
    type: Literal["reasoning"]
    id: str | None = None
    summary: list[TextPart] = Field(default_factory=list)
    content: list[TextPart] | None = None
    encrypted_content: str | None = None


_MODELS: dict[str, type[_In]] = {
    "message": MessageItem,
    "function_call": FunctionCallItem,
    "function_call_output": FunctionCallOutputItem,
    "reasoning": ReasoningItem,
}


def _parse(model: type[_In], raw: dict[str, Any], where: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        param = f"{where}{path}"
        raise InvalidField(f"invalid value for '{param}': {first['msg']}", param=param) from None


def _refuse_type(kind: Any, where: str) -> InvalidField:
    if kind == "item_reference":
        why = "item references are not supported; send the items themselves or use previous_response_id"
    else:
        why = "glmserve accepts message, function_call, function_call_output and reasoning items only"
    return InvalidField(
        f"input item type '{kind}' at '{where}' is not supported: {why}", param=f"{where}.type"
    )


def _content(parts: str | list[Part], role: str, where: str) -> list[dict[str, Any]]:
    assistant = role == "assistant"
    if isinstance(parts, str):
        parts = [Part(type="output_text" if assistant else "input_text", text=parts)]
    out: list[dict[str, Any]] = []
    for j, part in enumerate(parts):
        at = f"{where}.content[{j}]"
        if part.type in _TEXT_PARTS and part.text is not None:
            kind = "output_text" if assistant else "input_text"
            extra: dict[str, Any] = {"annotations": [], "logprobs": []} if assistant else {}
            out.append({"type": kind, "text": part.text, **extra})
        elif part.type == "refusal" and assistant and part.refusal is not None:
            out.append({"type": "refusal", "refusal": part.refusal})
        elif part.type == "input_image" and not assistant:
            out.append(_image(part, at))
        else:
            raise InvalidField(
                f"content part type '{part.type}' at '{at}' is not supported in a {role} message "
                "(text and, in user messages, input_image parts are)",
                param=f"{at}.type",
            )
    return out


def _image(part: Part, where: str) -> dict[str, Any]:
    if not part.image_url:
        raise InvalidField(
            f"'{where}' needs an image_url (a data URL or an http(s) URL); file_id is not supported",
            param=f"{where}.image_url",
        )
    return {"type": "input_image", "image_url": part.image_url, "detail": part.detail or "auto"}


def _output(output: str | list[Part], where: str) -> str | list[dict[str, Any]]:
    if isinstance(output, str):
        return output
    texts = []
    for j, part in enumerate(output):
        if part.type not in _TEXT_PARTS or part.text is None:
            at = f"{where}.output[{j}]"
            raise InvalidField(
                f"function_call_output part type '{part.type}' at '{at}' is not supported (text only)",
                param=f"{at}.type",
            )
        texts.append({"type": "input_text", "text": part.text})
    return texts


def normalize_item(raw: Any, where: str) -> dict[str, Any]:
    """One input item as its stored resource (with ``id`` and ``status``)."""
    if not isinstance(raw, dict):
        raise InvalidField(f"'{where}' must be an object", param=where)
    kind = raw.get("type") or ("message" if "role" in raw else None)
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise _refuse_type(kind, where)
    item = _parse(model, {**raw, "type": kind}, where)
    base = {"id": item.id or new_id(ITEM_PREFIXES[kind]), "type": kind}
    match item:
        case MessageItem():
            return {
                **base,
                "role": item.role,
                "content": _content(item.content, item.role, where),
                "status": "completed",
            }
        case FunctionCallItem():
            return {
                **base,
                "call_id": item.call_id,
                "name": item.name,
                "arguments": item.arguments,
                "status": "completed",
            }
        case FunctionCallOutputItem():
            return {
                **base,
                "call_id": item.call_id,
                "output": _output(item.output, where),
                "status": "completed",
            }
    reasoning: ReasoningItem = item
    out: dict[str, Any] = {
        **base,
        "summary": [{"type": "summary_text", "text": p.text} for p in reasoning.summary],
        "status": "completed",
    }
    if reasoning.content:
        out["content"] = [{"type": "reasoning_text", "text": p.text} for p in reasoning.content]
    if reasoning.encrypted_content is not None:
        out["encrypted_content"] = reasoning.encrypted_content
    return out


def normalize(value: str | list[Any] | None, where: str = "input") -> list[dict[str, Any]]:
    """The request's ``input`` as stored items; a string is one user message."""
    if value is None:
        return []
    if isinstance(value, str):
        return [normalize_item({"type": "message", "role": "user", "content": value}, where)]
    return [normalize_item(raw, f"{where}[{i}]") for i, raw in enumerate(value)]


def reasoning_text(item: dict[str, Any]) -> str:
    """What a reasoning item said: its full text if it has one, else its summary."""
    parts = item.get("content") or item.get("summary") or []
    return "\n".join(p.get("text", "") for p in parts)
