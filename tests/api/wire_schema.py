"""Validate what glmserve sends against OpenAI's published OpenAPI document.

The document lives in the shared spec folder (``shared/spec/openai-openapi.json``). It marks
nullable fields the OpenAPI 3.0 way (``"nullable": true``), which a JSON Schema validator does not
understand, so every such schema is rewritten to ``{"anyOf": [schema, {"type": "null"}]}`` first.
``$ref``s point into ``#/components/schemas/...``; the whole rewritten document is registered as
one resource so that every reference resolves against it.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_URI = "urn:openai-openapi"
_SPEC_NAME = Path("spec") / "openai-openapi.json"
_REPO_ROOT = Path(__file__).resolve().parents[2]


def spec_path() -> Path:
    """Where the OpenAPI document is: $GLMSERVE_OPENAPI_SPEC, else a `shared/` beside or in the repo."""
    override = os.environ.get("GLMSERVE_OPENAPI_SPEC")
    candidates = [Path(override)] if override else []
    candidates += [_REPO_ROOT / "shared" / _SPEC_NAME, _REPO_ROOT.parent / "shared" / _SPEC_NAME]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"openai-openapi.json not found; looked in {[str(c) for c in candidates]}")


def rewrite_nullable(node: Any) -> Any:
    """Turn OpenAPI 3.0 `nullable: true` into JSON Schema `anyOf [..., null]`, recursively."""
    if isinstance(node, list):
        return [rewrite_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    rewritten = {key: rewrite_nullable(value) for key, value in node.items()}
    # Only a boolean `nullable` is the keyword; a property that happens to be named so is a dict.
    nullable = rewritten.get("nullable")
    if isinstance(nullable, bool):
        del rewritten["nullable"]
        if nullable:
            return {"anyOf": [rewritten, {"type": "null"}]}
    return rewritten


@functools.cache
def _registry() -> Registry:
    document = rewrite_nullable(json.loads(spec_path().read_text(encoding="utf-8")))
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    return Registry().with_resource(SPEC_URI, resource)


@functools.cache
def _validator(schema_name: str) -> Draft202012Validator:
    schema = {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}
    return Draft202012Validator(schema, registry=_registry())


def assert_valid(schema_name: str, instance: Any) -> None:
    """Fail with every violation listed if `instance` does not match the named component schema."""
    errors = sorted(_validator(schema_name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  at {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]
        raise AssertionError(
            f"{schema_name} violated ({len(errors)} errors):\n"
            + "\n".join(lines[:20])
            + f"\ninstance: {json.dumps(instance, ensure_ascii=False)[:2000]}"
        )


def assert_completion(body: Any) -> None:
    assert_valid("CreateChatCompletionResponse", body)


def assert_chunk(body: Any) -> None:
    assert_valid("CreateChatCompletionStreamResponse", body)


def assert_error(body: Any) -> None:
    """OpenAI error envelope, plus glmserve's promise that `code` is a (Zhipu) string."""
    assert_valid("ErrorResponse", body)
    assert isinstance(body["error"]["code"], str), body


def sdk_dump(obj: Any) -> Any:
    """An SDK object as it came over the wire.

    Plain `.model_dump()` fills every field the SDK type declares with None (`system_fingerprint`,
    `tool_calls`, ...), which the schema forbids for non-nullable fields even though the server never
    sent them; `exclude_unset` keeps exactly the fields the server sent, explicit nulls included.
    """
    return obj.model_dump(exclude_unset=True)
