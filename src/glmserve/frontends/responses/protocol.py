"""Wire models for ``POST /responses`` (OpenAI's ``CreateResponse``): permissive in.

Unknown keys and nulls are accepted, as on chat completions. ``input`` items are kept as plain
dicts here and parsed one by one in ``items``, so that an unsupported item type gets a 400 that
names it and its place (``input[3].type``), not a union error.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from glmserve.frontends.chat.tools import FUNCTION_NAME


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FunctionTool(_In):
    type: Literal["function"]
    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class TextFormat(_In):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class TextParam(_In):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningParam(_In):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None
    context: Literal["auto", "current_turn", "all_turns"] | None = None

    @property
    def summary_mode(self) -> str | None:
        return self.summary or self.generate_summary


class StreamOptions(_In):
    include_obfuscation: bool | None = None


class CreateResponse(_In):
    """The fields glmserve reads; ``tools`` and ``tool_choice`` are checked in ``translate``."""

    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    tools: list[dict[str, Any]] | None = Field(None, max_length=128)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextParam | None = None
    reasoning: ReasoningParam | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    metadata: dict[str, str] | None = Field(None, max_length=16)
    user: str | None = None
    safety_identifier: str | None = Field(None, max_length=64)
    prompt_cache_key: str | None = None
    truncation: Literal["auto", "disabled"] | None = None
    store: bool | None = None
    background: bool | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    include: list[str] | None = None
    service_tier: str | None = None
    max_tool_calls: int | None = Field(None, ge=1)
    top_logprobs: int | None = Field(None, ge=0, le=20)
    # Parts of the API glmserve does not serve; a value other than null is refused, naming it.
    conversation: Any = None
    prompt: Any = None
    context_management: Any = None

    @property
    def stores(self) -> bool:
        return self.store is not False


class InputTokensRequest(_In):
    """``POST /responses/input_tokens`` (``TokenCountsBody``): a request to count, not to run."""

    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    tools: list[dict[str, Any]] | None = Field(None, max_length=128)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextParam | None = None
    reasoning: ReasoningParam | None = None
    truncation: Literal["auto", "disabled"] | None = None
    conversation: Any = None

    def as_create(self) -> CreateResponse:
        return CreateResponse.model_validate(
            {**self.model_dump(exclude_none=True, by_alias=True), "store": False, "max_output_tokens": 1}
        )
