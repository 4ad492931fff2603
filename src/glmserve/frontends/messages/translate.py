"""An Anthropic Messages request as a ``ChatCompletionRequest``, plus what chat cannot say.

The Messages front-end is a second front-end over the one pipeline: its request is translated
into the chat front-end's model and planned by ``build_plan`` (so tool schemas, tool_choice,
images, the model table and every 400 are the same), then ``Translation.apply`` adds to the
plan's ``Generation`` what chat completions has no field for: ``top_k``, the thinking budget,
the client's ``anthropic-version`` / ``anthropic-beta`` headers, and the reasoning of assistant
turns sent back (thinking blocks), kept on tool-use turns so a thinking upstream accepts them.

Mapping: ``system`` (string or text blocks; Claude Code's per-request
``x-anthropic-billing-header`` block is dropped, it would defeat the prompt cache) → a system
message; a user turn's ``tool_result`` blocks → ``tool`` messages first (chat wants them right
after the assistant's calls), its text and images → one user message; an assistant turn's text
→ content, ``tool_use`` → ``tool_calls``, ``thinking`` → ``reasoning_content``. ``tool_choice``
``any`` → ``required``, ``tool`` → the named function, ``none`` → none; ``stop_sequences`` →
``stop``; ``metadata.user_id`` → ``user``; ``output_config.format`` → a ``json_schema``
response format.

Refused with a 400 naming the field: server tools (``web_search_…``, ``bash_…``, any ``type``
but ``custom``), content blocks other than text/image/tool_use/tool_result/thinking/
redacted_thinking (``document``, ``search_result``, …), images by ``file`` id, ``mcp_servers``,
``container``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from glmserve.engines.base import Generation
from glmserve.errors import InvalidField
from glmserve.frontends.chat.protocol import (
    ChatCompletionRequest,
    FunctionCall,
    ImagePart,
    ImageURL,
    Message,
    TextPart,
    Thinking,
    ToolCallIn,
)
from glmserve.frontends.chat.tools import (
    FunctionDef,
    JsonSchemaFormat,
    NamedFunction,
    NamedToolChoice,
    ResponseFormat,
    ToolDef,
    check_schema,
)
from glmserve.frontends.messages.protocol import (
    Base64Source,
    CountTokensRequest,
    ImageBlock,
    MessageParam,
    OtherBlock,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UrlSource,
)
from glmserve.frontends.messages.signature import ThinkingSigner

BILLING_HEADER = "x-anthropic-billing-header:"
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")
EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(slots=True)
class Reasoning:
    """An assistant turn's thinking, by its index among the chat messages."""

    text: str
    blocks: list[dict[str, Any]]  # thinking blocks an Anthropic upstream can verify, in order


@dataclass(slots=True)
class Translation:
    chat: ChatCompletionRequest
    reasoning: dict[int, Reasoning] = field(default_factory=dict)
    top_k: int | None = None
    budget: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def apply(self, gen: Generation) -> Generation:
        """What the chat request could not carry, onto the plan's generation."""
        if len(gen.messages) != len(self.chat.messages):
            raise AssertionError("a chat plan keeps one engine message per chat message")
        for index, reasoning in self.reasoning.items():
            gen.messages[index]["reasoning_content"] = reasoning.text
            if reasoning.blocks:
                gen.messages[index]["thinking_blocks"] = reasoning.blocks
        gen.sampling.top_k = self.top_k
        gen.reasoning_budget = self.budget if gen.thinking == "enabled" else None
        gen.headers = dict(self.headers)
        return gen


def _refuse(what: str, param: str) -> InvalidField:
    return InvalidField(f"{what} is not supported by glmserve", param=param)


def _text(blocks: str | list[Any] | None) -> str:
    if blocks is None or isinstance(blocks, str):
        return blocks or ""
    return "\n".join(b.text for b in blocks if isinstance(b, TextBlock))


def _image(block: ImageBlock, param: str) -> ImagePart:
    source = block.source
    if isinstance(source, Base64Source):
        url = f"data:{source.media_type};base64,{source.data}"
    elif isinstance(source, UrlSource):
        url = source.url
    else:
        raise _refuse(f"an image source of type '{source.type}'", f"{param}.source.type")
    return ImagePart(type="image_url", image_url=ImageURL(url=url))


def _system(req: CountTokensRequest) -> Message | None:
    if req.system is None:
        return None
    if isinstance(req.system, str):
        texts = [req.system]
    else:
        texts = [b.text for b in req.system if not b.text.startswith(BILLING_HEADER)]
    text = "\n".join(t for t in texts if t)
    return Message(role="system", content=text) if text else None


def _tool_result(block: ToolResultBlock, param: str, images: list[ImagePart]) -> Message:
    if isinstance(block.content, list):
        for j, part in enumerate(block.content):
            if isinstance(part, OtherBlock):
                raise _refuse(f"a '{part.type}' block in a tool_result", f"{param}.content[{j}].type")
            if isinstance(part, ImageBlock):
                images.append(_image(part, f"{param}.content[{j}]"))
    text = _text(block.content)
    if block.is_error:
        text = f"Error: {text}" if text else "Error"
    return Message(role="tool", content=text, tool_call_id=block.tool_use_id)


def _user(msg: MessageParam, i: int) -> list[Message]:
    if isinstance(msg.content, str):
        return [Message(role="user", content=msg.content)]
    tools: list[Message] = []
    parts: list[TextPart | ImagePart] = []
    images: list[ImagePart] = []
    for j, block in enumerate(msg.content):
        param = f"messages[{i}].content[{j}]"
        if isinstance(block, TextBlock):
            parts.append(TextPart(type="text", text=block.text))
        elif isinstance(block, ImageBlock):
            parts.append(_image(block, param))
        elif isinstance(block, ToolResultBlock):
            tools.append(_tool_result(block, param, images))
        elif isinstance(block, ThinkingBlock | RedactedThinkingBlock | ToolUseBlock):
            raise InvalidField(f"a '{block.type}' block belongs in an assistant turn", param=f"{param}.type")
        else:
            raise _refuse(f"a content block of type '{block.type}'", f"{param}.type")
    parts += images  # images a tool returned reach the model in the user turn after the results
    if not parts:
        return tools
    if all(isinstance(p, TextPart) for p in parts):
        return [*tools, Message(role="user", content="\n".join(p.text for p in parts))]  # type: ignore[union-attr]
    return [*tools, Message(role="user", content=list(parts))]


def _assistant(msg: MessageParam, i: int, signer: ThinkingSigner) -> tuple[Message, Reasoning | None]:
    if isinstance(msg.content, str):
        return Message(role="assistant", content=msg.content), None
    texts: list[str] = []
    calls: list[ToolCallIn] = []
    thoughts: list[str] = []
    blocks: list[dict[str, Any]] = []
    for j, block in enumerate(msg.content):
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ToolUseBlock):
            arguments = orjson.dumps(block.input).decode()
            function = FunctionCall(name=block.name, arguments=arguments)
            calls.append(ToolCallIn(id=block.id, type="function", function=function))
        elif isinstance(block, ThinkingBlock):
            thoughts.append(block.thinking)
            if block.signature and not signer.verify(block.thinking, block.signature):
                blocks.append({"type": "thinking", "thinking": block.thinking, "signature": block.signature})
        elif isinstance(block, RedactedThinkingBlock):
            blocks.append({"type": "redacted_thinking", "data": block.data})
        else:
            what = f"a '{block.type}' block in an assistant turn"
            raise _refuse(what, f"messages[{i}].content[{j}].type")
    message = Message(role="assistant", content="".join(texts), tool_calls=calls or None)
    reasoning = Reasoning("\n".join(thoughts), blocks) if thoughts or blocks else None
    return message, reasoning


def _tools(req: CountTokensRequest) -> list[ToolDef] | None:
    if req.tools is None:
        return None
    out = []
    for i, tool in enumerate(req.tools):
        if tool.type not in (None, "custom"):
            raise _refuse(f"the server tool '{tool.type}'", f"tools[{i}].type")
        schema = tool.input_schema if tool.input_schema is not None else EMPTY_SCHEMA
        check_schema(schema, f"tools[{i}].input_schema")
        function = FunctionDef(name=tool.name, description=tool.description, parameters=schema)
        out.append(ToolDef(type="function", function=function))
    return out


def _tool_choice(req: CountTokensRequest) -> Any:
    choice = req.tool_choice
    if choice is None:
        return None
    if choice.type == "tool":
        names = {t.name for t in req.tools or []}
        if not choice.name or choice.name not in names:
            raise InvalidField(
                f"tool_choice names tool '{choice.name}', which is not among the tools",
                param="tool_choice.name",
            )
        return NamedToolChoice(type="function", function=NamedFunction(name=choice.name))
    if choice.type == "any" and not req.tools:
        raise InvalidField("tool_choice 'any' needs at least one tool", param="tool_choice")
    return {"auto": "auto", "any": "required", "none": "none"}[choice.type]


def _response_format(req: CountTokensRequest) -> ResponseFormat | None:
    fmt = (req.output_config.format if req.output_config else None) or req.output_format
    if fmt is None:
        return None
    check_schema(fmt.schema_, "output_config.format.schema")
    return ResponseFormat(type="json_schema", json_schema=JsonSchemaFormat(schema=fmt.schema_))


def _thinking(req: CountTokensRequest) -> tuple[Thinking | None, int | None]:
    if req.thinking is None:
        return None, None
    if req.thinking.type == "disabled":
        return Thinking(type="disabled"), None
    if req.thinking.type == "enabled" and req.thinking.budget_tokens is None:
        raise InvalidField(
            "thinking.budget_tokens is required with type 'enabled'", param="thinking.budget_tokens"
        )
    return Thinking(type="enabled"), req.thinking.budget_tokens


def _messages(req: CountTokensRequest, signer: ThinkingSigner) -> tuple[list[Message], dict[int, Reasoning]]:
    messages: list[Message] = []
    reasoning: dict[int, Reasoning] = {}
    if (system := _system(req)) is not None:
        messages.append(system)
    for i, msg in enumerate(req.messages):
        if msg.role == "user":
            if isinstance(msg.content, list) and not msg.content:
                raise InvalidField(f"messages[{i}].content must not be empty", param=f"messages[{i}].content")
            messages += _user(msg, i)
            continue
        message, thought = _assistant(msg, i, signer)
        if thought is not None:
            reasoning[len(messages)] = thought
        messages.append(message)
    if not messages:
        raise InvalidField("messages must not be empty", param="messages")
    return messages, reasoning


def translate(req: CountTokensRequest, headers: dict[str, str], signer: ThinkingSigner) -> Translation:
    """The chat request (and the rest) for ``req``; raises the client's 400."""
    if req.mcp_servers:
        raise _refuse("mcp_servers (the MCP connector)", "mcp_servers")
    if req.container is not None:
        raise _refuse("container (code execution)", "container")
    messages, reasoning = _messages(req, signer)
    thinking, budget = _thinking(req)
    choice = req.tool_choice
    chat = ChatCompletionRequest(
        model=req.model,
        messages=messages,
        stream=req.stream,
        temperature=req.temperature,
        top_p=req.top_p,
        max_tokens=req.max_tokens,
        stop=[s for s in req.stop_sequences or [] if s] or None,
        user=req.metadata.user_id if req.metadata else None,
        tools=_tools(req),
        tool_choice=_tool_choice(req),
        parallel_tool_calls=None if choice is None or choice.disable_parallel_tool_use is None
        else not choice.disable_parallel_tool_use,
        thinking=thinking,
        response_format=_response_format(req),
    )  # fmt: skip
    forwarded = {name: headers[name] for name in FORWARDED_HEADERS if name in headers}
    return Translation(chat, reasoning, req.top_k, budget, forwarded)
