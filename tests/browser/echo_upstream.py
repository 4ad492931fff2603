"""A scripted upstream for the console tests: it thinks out loud, then echoes the last user message.

The echo makes model output the test's own choice, so a reply can carry an XSS payload or a
``javascript:`` link; with ``tools`` in the request it answers with a tool call (as FakeUpstream
does). Reasoning comes as ``reasoning_content`` deltas, content a few characters per chunk.
"""

from __future__ import annotations

from typing import Any

from api.fake_upstream import (
    KNOWN,
    FakeUpstream,
    Reader,
    Writer,
    _chunk,
    _json,
    _sse,
    _usage,
    completion,
    stream_chunks,
)

PIECE = 6


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):
            return " ".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
        return str(content or "")
    return ""


def echo_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    text = last_user_text(body)
    pieces = [text[i : i + PIECE] for i in range(0, len(text), PIECE)] or [""]
    chunks = [_chunk({"role": "assistant", "content": ""})]
    chunks += [_chunk({"reasoning_content": part}) for part in ("The user said: ", text[:40])]
    chunks += [_chunk({"content": part}) for part in pieces]
    chunks.append(_chunk({}, "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = _usage(body, len(pieces))
        tail = {"id": "fake-1", "object": "chat.completion.chunk", "created": 1, "model": "echo"}
        chunks.append({**tail, "choices": [], "usage": usage})
    return chunks


class EchoUpstream(FakeUpstream):
    KNOWN_SCENARIOS = KNOWN | {"echo"}

    async def _do_echo(self, rec: Any, reader: Reader, writer: Writer, args: list[str]) -> bool:
        if not rec.body.get("stream"):
            answer = completion(rec.body, self.chunks)
            if not rec.body.get("tools"):
                answer["choices"][0]["message"]["content"] = last_user_text(rec.body)
            return await _json(writer, 200, answer)
        if rec.body.get("tools"):
            return await _sse(writer, stream_chunks(rec.body, self.chunks))
        return await _sse(writer, echo_chunks(rec.body))
