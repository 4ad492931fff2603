"""The endpoints a batch (or a line of its file) may name."""

from __future__ import annotations

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
ENDPOINTS = (CHAT, EMBEDDINGS)
# Zhipu's batch guide names them under its own API version (/v4/chat/completions): the same two.
_NAMES = {f"{prefix}{canon[3:]}": canon for canon in ENDPOINTS for prefix in ("/v1", "/v4", "/api/paas/v4")}
ENDPOINTS_SAID = "/v1/chat/completions or /v1/embeddings (/v4/… and /api/paas/v4/… name the same)"


def canonical_endpoint(value: object) -> str | None:
    """The endpoint a batch or line names (``/v1/…``, ``/v4/…`` or ``/api/paas/v4/…``), else None."""
    return _NAMES.get(value) if isinstance(value, str) else None
