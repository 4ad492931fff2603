"""Wire models and checks for tools, tool_choice and response_format (API.md §2.4)."""

from __future__ import annotations

from typing import Any, Literal

from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from pydantic import BaseModel, ConfigDict, Field

from glmserve.errors import InvalidField

FUNCTION_NAME = r"^[a-zA-Z0-9_-]{1,64}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FunctionDef(_In):
    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None  # passed on to upstreams as sent


class ToolDef(_In):
    """``function`` tools, and Zhipu's ``web_search`` / ``retrieval`` / ``mcp`` (any values)."""

    type: str
    function: FunctionDef | None = None


class NamedFunction(_In):
    name: str


class NamedToolChoice(_In):
    type: Literal["function"] = "function"
    function: NamedFunction


class JsonSchemaFormat(_In):
    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_In):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


def check_schema(schema: dict[str, Any], param: str) -> None:
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise InvalidField(f"invalid JSON schema in '{param}': {exc.message}", param=param) from None


def function_schemas(tools: list[ToolDef], model: str) -> dict[str, dict[str, Any]]:
    """Declared functions by name, with their parameter schemas checked."""
    functions: dict[str, dict[str, Any]] = {}
    for i, tool in enumerate(tools):
        if tool.type != "function":
            raise InvalidField(
                f"tool type '{tool.type}' is not available on model '{model}': no backend provides it",
                param=f"tools[{i}].type",
            )
        if tool.function is None:
            raise InvalidField("a function tool needs a 'function' object", param=f"tools[{i}].function")
        params = tool.function.parameters or {"type": "object", "properties": {}}
        check_schema(params, f"tools[{i}].function.parameters")
        functions[tool.function.name] = params
    return functions


def check_tool_choice(choice: str | NamedToolChoice | None, functions: dict[str, Any]) -> None:
    if isinstance(choice, NamedToolChoice) and choice.function.name not in functions:
        raise InvalidField(
            f"tool_choice names function '{choice.function.name}', which is not among the tools",
            param="tool_choice",
        )
    if choice == "required" and not functions:
        raise InvalidField("tool_choice 'required' needs at least one function tool", param="tool_choice")


def response_schema(fmt: ResponseFormat | None) -> dict[str, Any] | None:
    if fmt is None or fmt.type != "json_schema":
        return None
    if fmt.json_schema is None or fmt.json_schema.schema_ is None:
        raise InvalidField("json_schema response_format needs json_schema.schema", param="response_format")
    check_schema(fmt.json_schema.schema_, "response_format.json_schema.schema")
    return fmt.json_schema.schema_
