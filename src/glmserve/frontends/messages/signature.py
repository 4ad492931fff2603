"""Signatures of the thinking blocks glmserve writes: ``glm1.`` + HMAC-SHA256 of the text.

A client sends thinking blocks back with their signatures (Claude Code does on every tool-use
turn). The key derives from the master key that replicas share, so any replica can tell its own
blocks from foreign ones (an Anthropic upstream's): the reasoning of both is kept for the model,
and only foreign blocks are forwarded to an ``anthropic`` upstream, which would refuse ours.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "glm1."


class ThinkingSigner:
    def __init__(self, key: bytes) -> None:
        self._key = hmac.new(key, b"thinking blocks", hashlib.sha256).digest()

    def sign(self, thinking: str) -> str:
        digest = hmac.new(self._key, thinking.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
        return PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def verify(self, thinking: str, signature: str | None) -> bool:
        """True when ``signature`` is glmserve's own for exactly this text."""
        if not signature or not signature.startswith(PREFIX):
            return False
        return hmac.compare_digest(self.sign(thinking).encode(), signature.encode("utf-8", "replace"))
