"""Wire models for Anthropic's ``POST /v1/messages`` and ``/v1/messages/count_tokens``.

Permissive in, like the chat models: unknown keys are ignored (clients send new fields before
servers know them: ``context_management``, ``service_tier``, ``speed``). Content blocks of a
type glmserve cannot serve parse as ``OtherBlock`` and tools of a server-side type as
``ToolParam`` with that ``type``, so ``translate`` refuses each with a 400 that names it,
instead of pydantic's list of union members.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from glmserve.errors import InvalidField, InvalidRequest
from glmserve.frontends.chat.tools import FUNCTION_NAME
from glmserve.frontends.validation import field_path

M = TypeVar("M", bound=BaseModel)


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextBlock(_In):
    type: Literal["text"]
    text: str


class Base64Source(_In):
    type: Literal["base64"]
    media_type: str
    data: str


class UrlSource(_In):
    type: Literal["url"]
    url: str


class OtherSource(_In):
    """``file`` (the Files API) and anything newer: refused."""

    type: str


def _tag(known: tuple[str, ...]) -> Any:
    """The union member for a value's ``type``; capitalised, so error paths leave tags out."""

    def tag(value: Any) -> str:
        kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        return kind.capitalize() if kind in known else "Other"

    return Discriminator(tag)


ImageSource = Annotated[
    Annotated[Base64Source, Tag("Base64")]
    | Annotated[UrlSource, Tag("Url")]
    | Annotated[OtherSource, Tag("Other")],
    _tag(("base64", "url")),
]


class ImageBlock(_In):
    type: Literal["image"]
    source: ImageSource


class ToolUseBlock(_In):
    type: Literal["tool_use"]
    id: str = Field(min_length=1)
    name: str
    input: dict[str, Any] = Field(default_factory=dict)


class ThinkingBlock(_In):
    type: Literal["thinking"]
    thinking: str
    signature: str | None = None


class RedactedThinkingBlock(_In):
    type: Literal["redacted_thinking"]
    data: str


class OtherBlock(_In):
    """A block glmserve cannot serve (``document``, ``search_result``, server tool results …)."""

    type: str


ResultPart = Annotated[
    Annotated[TextBlock, Tag("Text")]
    | Annotated[ImageBlock, Tag("Image")]
    | Annotated[OtherBlock, Tag("Other")],
    _tag(("text", "image")),
]


class ToolResultBlock(_In):
    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: str | list[ResultPart] | None = None
    is_error: bool | None = None


Block = Annotated[
    Annotated[TextBlock, Tag("Text")]
    | Annotated[ImageBlock, Tag("Image")]
    | Annotated[ToolUseBlock, Tag("Tool_use")]
    | Annotated[ToolResultBlock, Tag("Tool_result")]
    | Annotated[ThinkingBlock, Tag("Thinking")]
    | Annotated[RedactedThinkingBlock, Tag("Redacted_thinking")]
    | Annotated[OtherBlock, Tag("Other")],
    _tag(("text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking")),
]


class MessageParam(_In):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class ToolParam(_In):
    """A client tool (``type`` absent or ``custom``); any other ``type`` is a server tool."""

    type: str | None = None
    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = None
    input_schema: dict[str, Any] | None = None


class ToolChoice(_In):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class ThinkingConfig(_In):
    """``adaptive`` is served as ``enabled`` with the engine's default budget."""

    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = Field(None, ge=1)


class Metadata(_In):
    user_id: str | None = Field(None, max_length=256)


class OutputFormat(_In):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(_In):
    format: OutputFormat | None = None


class CountTokensRequest(_In):
    model: str = Field(min_length=1)
    messages: list[MessageParam] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    tools: list[ToolParam] | None = Field(None, max_length=128)
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig | None = None
    output_config: OutputConfig | None = None
    output_format: OutputFormat | None = None  # the structured-outputs beta's spelling
    mcp_servers: list[Any] | None = None
    container: Any = None
    max_tokens: int | None = Field(None, ge=1)
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    metadata: Metadata | None = None
    stream: bool | None = None


class MessagesRequest(CountTokensRequest):
    max_tokens: int = Field(ge=1)  # type: ignore[assignment]


def parse_request(model: type[M], body: Any) -> M:
    """Like ``validation.parse``, but names the deepest failing field: with ``str | list[block]``
    content the first error is always "not a string", the deepest the block's own field."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        worst = max(errors, key=lambda e: len(e["loc"]))
        param = field_path(tuple(worst["loc"]))
        raise InvalidField(f"invalid value for '{param}': {worst['msg']}", param=param) from None
