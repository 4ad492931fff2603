"""Chat logprobs from an engine's chunk: llama.cpp's and OpenAI-compatible upstreams' share a shape."""

from __future__ import annotations

from typing import Any


def logprob_entries(raw: Any) -> tuple[dict[str, Any], ...]:
    """OpenAI ``logprobs.content`` entries from an engine's ``logprobs`` object (llama.cpp's or an
    upstream's), with only the wire's fields; anything malformed is left out."""
    entries = raw.get("content") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        return ()

    def one(item: Any) -> dict[str, Any] | None:
        if not isinstance(item, dict) or not isinstance(item.get("token"), str):
            return None
        logprob = item.get("logprob")
        if not isinstance(logprob, int | float):
            return None
        raw_bytes = item.get("bytes")
        token: str = item["token"]
        data = raw_bytes if isinstance(raw_bytes, list) else list(token.encode("utf-8", "surrogatepass"))
        return {"token": token, "logprob": float(logprob), "bytes": data}

    out = []
    for item in entries:
        if (entry := one(item)) is not None:
            top = [alt for a in item.get("top_logprobs") or () if (alt := one(a)) is not None]
            out.append({**entry, "top_logprobs": top})
    return tuple(out)
