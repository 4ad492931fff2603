"""Wire models for ``POST /chat/completions``: permissive in (unknown keys and nulls accepted)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from glmserve.frontends.chat.tools import NamedToolChoice, ResponseFormat, ToolDef


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextPart(_In):
    type: Literal["text"]
    text: str


class ImageURL(_In):
    url: str
    detail: str | None = None


class ImagePart(_In):
    type: Literal["image_url"]
    image_url: ImageURL


class OtherPart(_In):
    """Video, file and audio parts: accepted on the wire, refused by models that cannot take them."""

    type: Literal["video_url", "file_url", "file", "input_audio"]


ContentPart = Annotated[TextPart | ImagePart | OtherPart, Field(discriminator="type")]


class FunctionCall(_In):
    name: str
    arguments: str = ""


class ToolCallIn(_In):
    id: str | None = None
    type: str = "function"
    function: FunctionCall | None = None


class Message(_In):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None  # vLLM's name for the same thing


class StreamOptions(_In):
    include_usage: bool | None = None


class Thinking(_In):
    type: Literal["enabled", "disabled"] | None = None
    clear_thinking: bool | None = None


class ChatCompletionRequest(_In):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    do_sample: bool | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(None, ge=1, le=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    user: str | None = None
    user_id: str | None = None
    request_id: str | None = Field(None, max_length=128)
    tools: list[ToolDef] | None = Field(None, max_length=128)
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    thinking: Thinking | None = None
    response_format: ResponseFormat | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)

    @property
    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else [s for s in self.stop if s]

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)
