"""Image parts of a request, checked and turned into data URLs for a model that can see.

Loading is async (an http fetch) and runs in the chat service before generation; base64
decoding and Pillow's checks run on a worker thread, so a 5 MB image never blocks the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from glmserve.config.images import ImageSettings
from glmserve.errors import InvalidRequest
from glmserve.frontends.chat.protocol import ImagePart, Message
from glmserve.images.decode import CheckedImage, ImageError, check, from_base64
from glmserve.images.fetch import FetchPolicy, fetch_image


def count_images(messages: list[Message]) -> int:
    return sum(
        isinstance(part, ImagePart) for m in messages if isinstance(m.content, list) for part in m.content
    )


def refuse_images(messages: list[Message], model: str) -> None:
    """A model that cannot see gets a 400 for images, never a silent drop."""
    if count_images(messages):
        raise InvalidRequest(
            f"model '{model}' does not accept images; GET /models shows which models do "
            "(capabilities.vision)",
            param="messages",
        )


class ImageLoader:
    """Loads every image of a request once, within the per-request limit."""

    def __init__(self, policy: FetchPolicy, max_images: int, client: httpx.AsyncClient | None = None):
        self.policy = policy
        self.max_images = max_images
        self._client = client or httpx.AsyncClient(trust_env=False)

    @classmethod
    def from_settings(cls, settings: ImageSettings) -> ImageLoader:
        policy = FetchPolicy(
            enabled=settings.fetch,
            timeout_s=settings.fetch_timeout_s,
            allow_hosts=frozenset(settings.allow_hosts),
        )
        return cls(policy, settings.max_per_request)

    async def load(self, url: str, where: str) -> CheckedImage:
        if url[:8].lower().startswith(("http://", "https://")):
            return await asyncio.to_thread(check, await fetch_image(self._client, url, self.policy), where)
        return await asyncio.to_thread(_decode, url, where)

    async def to_data_urls(self, messages: list[Message]) -> dict[tuple[int, int], str]:
        """``(message index, part index) → data URL`` for every image part."""
        total = count_images(messages)
        if total > self.max_images:
            raise ImageError(
                f"{total} images in one request; the limit is {self.max_images}", param="messages"
            )
        urls: dict[tuple[int, int], str] = {}
        for i, message in enumerate(messages):
            if not isinstance(message.content, list):
                continue
            for j, part in enumerate(message.content):
                if not isinstance(part, ImagePart):
                    continue
                where = f"messages[{i}].content[{j}]"
                if message.role != "user":  # as OpenAI: prompt rewriting assumes text elsewhere
                    raise ImageError(f"{where}: images are accepted only in user messages", param=where)
                urls[(i, j)] = (await self.load(part.image_url.url, where)).data_url()
        return urls

    async def close(self) -> None:
        await self._client.aclose()


def _decode(value: str, where: str) -> CheckedImage:
    return check(from_base64(value, where), where)


def vision_content(message: Message, index: int, urls: dict[tuple[int, int], str]) -> list[dict[str, Any]]:
    """OpenAI content parts with every image as a checked data URL."""
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(message.content if isinstance(message.content, list) else []):
        if isinstance(part, ImagePart):
            parts.append({"type": "image_url", "image_url": {"url": urls[(index, j)]}})
        elif part.type == "text":
            parts.append({"type": "text", "text": getattr(part, "text", "")})
        else:
            raise InvalidRequest(
                f"{part.type} content is not supported", param=f"messages[{index}].content[{j}]"
            )
    return parts
