"""Image parts of a request, checked and turned into data URLs for a model that can see."""

from __future__ import annotations

from typing import Any

import httpx

from glmserve.errors import InvalidRequest
from glmserve.images.decode import CheckedImage, ImageError, check, from_base64
from glmserve.images.fetch import FetchPolicy, fetch_image
from glmserve.protocol.chat import ImagePart, Message


def count_images(messages: list[Message]) -> int:
    return sum(
        isinstance(part, ImagePart) for m in messages if isinstance(m.content, list) for part in m.content
    )


def refuse_images(messages: list[Message], model: str) -> None:
    """A model that cannot see gets a 400 for images, never a silent drop."""
    if count_images(messages):
        raise InvalidRequest(
            f"model '{model}' cannot see images; send them to a vision model such as glm-4.6v",
            param="messages",
        )


class ImageLoader:
    """Loads every image of a request once, within the per-request limit."""

    def __init__(self, policy: FetchPolicy, max_images: int, client: httpx.AsyncClient | None = None):
        self.policy = policy
        self.max_images = max_images
        self._client = client or httpx.AsyncClient(trust_env=False)

    async def load(self, url: str, where: str) -> CheckedImage:
        if url.startswith(("http://", "https://")):
            return check(await fetch_image(self._client, url, self.policy), where)
        return check(from_base64(url, where), where)

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
                if isinstance(part, ImagePart):
                    where = f"messages[{i}].content[{j}]"
                    urls[(i, j)] = (await self.load(part.image_url.url, where)).data_url()
        return urls

    async def close(self) -> None:
        await self._client.aclose()


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
