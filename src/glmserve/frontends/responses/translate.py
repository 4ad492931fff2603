"""A Responses request → a ``ChatCompletionRequest``, so that one ``build_plan`` checks every protocol.

The conversation is the stored history behind ``previous_response_id`` (its items, oldest first),
then this request's ``input`` items; ``instructions`` become the system message (they are not
carried over from earlier responses, as in OpenAI's API). Items map onto chat messages:

- ``message`` → a message of its role (``input_image`` parts become ``image_url`` parts, which
  the image checks then see); an assistant message's ``output_text`` parts are its content;
- consecutive ``function_call`` items → one assistant message with ``tool_calls``;
- ``function_call_output`` → a ``tool`` message;
- ``reasoning`` → the ``reasoning_content`` of the assistant turn that follows it, kept in the
  prompt only with ``reasoning.context = "all_turns"`` (chat's ``clear_thinking: false``).

Parts of the API glmserve does not serve are refused with a 400 that names them.
"""

from __future__ import annotations

from typing import Any

from glmserve.errors import GlmError, InvalidField
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
)
from glmserve.frontends.responses.items import reasoning_text
from glmserve.frontends.responses.protocol import CreateResponse, FunctionTool, TextFormat
from glmserve.frontends.validation import parse

BUILTIN_TOOLS = (
    "web_search, web_search_preview, file_search, computer_use_preview, code_interpreter, "
    "image_generation, mcp, local_shell, shell, apply_patch, custom"
)
_UNSUPPORTED = {
    "conversation": "the Conversations API is not served; use previous_response_id",
    "prompt": "stored prompt templates are not served; send instructions and input",
    "context_management": "server-side compaction is not served",
}
THINKING_OFF = ("none", "minimal")


def refuse_unsupported(req: CreateResponse) -> None:
    for field, why in _UNSUPPORTED.items():
        if getattr(req, field) is not None:
            raise InvalidField(f"'{field}' is not supported: {why}", param=field)
    if req.truncation == "auto":
        raise InvalidField(
            "truncation 'auto' is not supported: glmserve never drops input in silence; "
            "an input longer than the context window is a 400",
            param="truncation",
        )
    if req.background and not req.stores:
        raise InvalidField("background responses must be stored (store: true)", param="background")
    if req.background and req.stream:
        raise InvalidField(
            "background responses are not streamed here; poll GET /responses/{id}", param="stream"
        )


def function_tools(tools: list[dict[str, Any]] | None) -> list[FunctionTool]:
    out = []
    for i, raw in enumerate(tools or []):
        kind = raw.get("type") if isinstance(raw, dict) else None
        if kind != "function":
            raise InvalidField(
                f"tool type '{kind}' at 'tools[{i}]' is not supported: glmserve serves function tools "
                f"only; built-in tools ({BUILTIN_TOOLS}) are not available",
                param=f"tools[{i}].type",
            )
        try:
            out.append(parse(FunctionTool, raw))
        except GlmError as exc:
            message = exc.message.replace("'", f"'tools[{i}].", 1)
            raise InvalidField(message, param=f"tools[{i}].{exc.param}") from None
    return out


def _allowed(choice: dict[str, Any], tools: list[FunctionTool]) -> tuple[list[FunctionTool], str]:
    names = set()
    for j, tool in enumerate(choice.get("tools") or []):
        if not isinstance(tool, dict) or tool.get("type") != "function" or not tool.get("name"):
            raise InvalidField("allowed_tools may list function tools only", param=f"tool_choice.tools[{j}]")
        names.add(tool["name"])
    mode = choice.get("mode")
    if mode not in ("auto", "required"):
        raise InvalidField("allowed_tools.mode must be 'auto' or 'required'", param="tool_choice.mode")
    return [t for t in tools if t.name in names], mode


def tool_choice(
    choice: str | dict[str, Any] | None, tools: list[FunctionTool]
) -> tuple[list[FunctionTool], str | NamedToolChoice | None]:
    """The tools offered and chat's ``tool_choice``; ``allowed_tools`` narrows the tools."""
    if choice is None or choice in ("auto", "none", "required"):
        return tools, choice  # type: ignore[return-value]
    if isinstance(choice, dict) and choice.get("type") == "function" and choice.get("name"):
        return tools, NamedToolChoice(function=NamedFunction(name=str(choice["name"])))
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        return _allowed(choice, tools)
    kind = choice.get("type") if isinstance(choice, dict) else choice
    raise InvalidField(
        f"tool_choice '{kind}' is not supported: use auto, none, required, a function or allowed_tools",
        param="tool_choice",
    )


def _chat_tool(tool: FunctionTool) -> ToolDef:
    fn = FunctionDef(
        name=tool.name, description=tool.description, parameters=tool.parameters, strict=tool.strict
    )
    return ToolDef(type="function", function=fn)


def response_format(fmt: TextFormat | None) -> ResponseFormat | None:
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return ResponseFormat(type="json_object")
    if fmt.schema_ is None:
        raise InvalidField("text.format json_schema needs a 'schema'", param="text.format.schema")
    schema = JsonSchemaFormat(name=fmt.name, schema=fmt.schema_, strict=fmt.strict)
    return ResponseFormat(type="json_schema", json_schema=schema)


def thinking(req: CreateResponse) -> Thinking | None:
    r = req.reasoning
    if r is None or (r.effort is None and r.context is None):
        return None
    kind = None if r.effort is None else "disabled" if r.effort in THINKING_OFF else "enabled"
    return Thinking(type=kind, clear_thinking=r.context != "all_turns")


class _Messages:
    """Builds chat messages from items, merging function calls into one assistant turn."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.where: list[str] = []
        self._reasoning: str | None = None

    def add(self, message: Message, where: str) -> None:
        self.messages.append(message)
        self.where.append(where)

    def _assistant(self, where: str) -> Message:
        last = self.messages[-1] if self.messages else None
        if last is not None and last.role == "assistant" and self._reasoning is None:
            return last
        message = Message(role="assistant", content="", reasoning_content=self._reasoning)
        self._reasoning = None
        self.add(message, where)
        return message

    def item(self, item: dict[str, Any], where: str) -> None:
        kind = item["type"]
        if kind == "reasoning":
            self._reasoning = reasoning_text(item)
        elif kind == "function_call":
            call = ToolCallIn(
                id=item["call_id"], function=FunctionCall(name=item["name"], arguments=item["arguments"])
            )
            target = self._assistant(where)
            target.tool_calls = [*(target.tool_calls or []), call]
        elif kind == "function_call_output":
            self._reasoning = None
            self.add(Message(role="tool", tool_call_id=item["call_id"], content=_output_text(item)), where)
        elif item["role"] == "assistant":
            message = Message(role="assistant", content=_text(item), reasoning_content=self._reasoning)
            self._reasoning = None
            self.add(message, where)
        else:
            self._reasoning = None
            self.add(Message(role=item["role"], content=_parts(item)), where)


def _text(item: dict[str, Any]) -> str:
    return "".join(p.get("text") or p.get("refusal") or "" for p in item["content"])


def _output_text(item: dict[str, Any]) -> str:
    output = item["output"]
    return output if isinstance(output, str) else "\n".join(p["text"] for p in output)


def _parts(item: dict[str, Any]) -> str | list[TextPart | ImagePart]:
    parts = item["content"]
    if all(p["type"] == "input_text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return [
        ImagePart(type="image_url", image_url=ImageURL(url=p["image_url"], detail=p.get("detail")))
        if p["type"] == "input_image"
        else TextPart(type="text", text=p["text"])
        for p in parts
    ]


def to_messages(
    instructions: str | None, history: list[dict[str, Any]], items: list[dict[str, Any]]
) -> tuple[list[Message], list[str]]:
    """Chat messages, and where each came from (``input[2]``, ``previous_response_id``...)."""
    built = _Messages()
    if instructions:
        built.add(Message(role="system", content=instructions), "instructions")
    for item in history:
        built.item(item, "previous_response_id")
    for i, item in enumerate(items):
        built.item(item, f"input[{i}]")
    if not built.messages:
        raise InvalidField("a response needs input (or instructions)", param="input")
    return built.messages, built.where


def to_chat_request(
    req: CreateResponse, history: list[dict[str, Any]], items: list[dict[str, Any]]
) -> tuple[ChatCompletionRequest, list[str]]:
    refuse_unsupported(req)
    tools, choice = tool_choice(req.tool_choice, function_tools(req.tools))
    messages, where = to_messages(req.instructions, history, items)
    chat = ChatCompletionRequest(
        model=req.model,
        messages=messages,
        stream=bool(req.stream),
        temperature=req.temperature,
        top_p=req.top_p,
        max_tokens=req.max_output_tokens,
        user=req.user,
        tools=[_chat_tool(t) for t in tools] or None,
        tool_choice=choice,
        parallel_tool_calls=req.parallel_tool_calls,
        thinking=thinking(req),
        response_format=response_format(req.text.format if req.text else None),
    )
    return chat, where


def _rename(text: str, where: list[str]) -> str:
    for i in range(len(where) - 1, -1, -1):
        text = text.replace(f"messages[{i}]", where[i])
    return text.replace("response_format.json_schema.schema", "text.format.schema").replace(
        "response_format", "text.format"
    )


def in_responses_terms(exc: GlmError, where: list[str]) -> GlmError:
    """A chat-side 400 (``messages[3].content[1]``) renamed to the Responses request's fields."""
    exc.message = _rename(exc.message, where)
    if exc.param == "messages":
        exc.param = "input"
    elif exc.param:
        exc.param = _rename(exc.param, where)
        if exc.param.startswith("tools[") and ".function." in exc.param:
            exc.param = exc.param.replace(".function.", ".", 1)
    exc.args = (exc.message,)
    return exc
