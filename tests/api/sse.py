"""Read a chat completion stream off the wire and check its framing and chunk sequence (API.md §3.3)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from .wire_schema import assert_chunk

DONE = "data: [DONE]"


@dataclass
class RawStream:
    """One SSE response read to the end: the exact text and the JSON chunks in it."""

    status_code: int
    headers: httpx.Headers
    text: str
    chunks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def content(self) -> str:
        return joined_content(self.chunks)


def post_stream(http: httpx.Client, body: dict[str, Any], path: str = "chat/completions") -> RawStream:
    """POST a `stream: true` request and read the whole event stream as text."""
    with http.stream("POST", path, json={**body, "stream": True}) as response:
        text = "".join(response.iter_text())
        raw = RawStream(response.status_code, response.headers, text)
    if raw.status_code == 200:
        raw.chunks = parse_events(text)
    return raw


def assert_framing(text: str) -> None:
    """Every line is `data: ...`, blank, or a `:` comment; events end with a blank line; then [DONE]."""
    assert text.endswith(f"{DONE}\n\n"), (
        f"stream must end with 'data: [DONE]' and a blank line: {text[-200:]!r}"
    )
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        assert line == "" or line.startswith("data: ") or line.startswith(":"), f"bad SSE line: {line!r}"
    data_lines = [line for line in text.split("\n") if line.startswith("data: ")]
    assert data_lines.count(DONE) == 1 and data_lines[-1] == DONE, "exactly one [DONE], and it comes last"


def parse_events(text: str) -> list[dict[str, Any]]:
    """The JSON payload of each data event, [DONE] excluded."""
    chunks = []
    for event in text.replace("\r\n", "\n").split("\n\n"):
        data = [line[len("data: ") :] for line in event.split("\n") if line.startswith("data: ")]
        if data and data != ["[DONE]"]:
            chunks.append(json.loads("\n".join(data)))
    return chunks


def joined_content(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        choice["delta"].get("content") or "" for chunk in chunks for choice in chunk.get("choices", [])
    )


def finish_chunk(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The one chunk whose choice carries a finish_reason."""
    finishing = [c for c in chunks if any(ch.get("finish_reason") for ch in c.get("choices", []))]
    assert len(finishing) == 1, f"expected exactly one chunk with a finish_reason, got {len(finishing)}"
    return finishing[0]


def usage_chunks(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in chunks if c.get("usage") is not None]


def assert_chunk_sequence(chunks: list[dict[str, Any]], *, include_usage: bool) -> dict[str, Any]:
    """Check the invariants glmserve promises for one streamed choice; return the usage object.

    Every chunk validates and is a `chat.completion.chunk` with the same id, created and model;
    `role` appears in the first delta only; exactly one finish chunk, after all content; usage exactly
    once: on the finish chunk (Zhipu style), or with `include_usage` only on a trailing
    `choices: []` chunk, null or absent everywhere else (OpenAI style).
    """
    assert chunks, "no chunks before [DONE]"
    for chunk in chunks:
        assert_chunk(chunk)
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    for key in ("id", "created", "model"):
        assert len({c[key] for c in chunks}) == 1, f"{key} differs between chunks"

    with_choices = [c for c in chunks if c["choices"]]
    deltas = [choice["delta"] for c in with_choices for choice in c["choices"]]
    assert deltas and deltas[0].get("role") == "assistant", f"first delta lacks role: {deltas[:1]}"
    assert all(d.get("role") is None for d in deltas[1:]), "role repeated after the first delta"

    finish = finish_chunk(chunks)
    assert finish is with_choices[-1], "the finish chunk must be the last chunk with choices"

    carrying = usage_chunks(chunks)
    assert len(carrying) == 1, f"usage must appear exactly once, found {len(carrying)}"
    if include_usage:
        assert chunks[-1]["choices"] == [] and carrying[0] is chunks[-1], (
            "usage belongs on a final choices:[]"
        )
        assert sum(1 for c in chunks if not c["choices"]) == 1, "only the usage chunk has choices:[]"
    else:
        assert carrying[0] is finish, "without include_usage, usage rides on the finish chunk"
        assert all(c["choices"] for c in chunks), "no choices:[] chunk without include_usage"
    usage: dict[str, Any] = carrying[0]["usage"]
    return usage
