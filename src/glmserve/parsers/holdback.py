"""Streaming helpers: never emit text that might be the start of a marker split across deltas."""

from __future__ import annotations


def partial_suffix(text: str, marker: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``marker``."""
    for size in range(min(len(text), len(marker) - 1), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0


def split_safe(text: str, markers: tuple[str, ...]) -> tuple[str, str]:
    """``(emit, keep)``: ``keep`` is the tail that could still grow into one of ``markers``."""
    keep = max((partial_suffix(text, m) for m in markers), default=0)
    return (text[: len(text) - keep], text[len(text) - keep :]) if keep else (text, "")
