"""Turn an ``image_url`` value into checked image bytes, or a 400 that names the problem.

Accepted: ``data:image/...;base64,`` URLs and bare base64 (the Zhipu SDKs strip the prefix).
Pillow identifies the format from the bytes (not the declared type) and the pixel count is
checked before any decoding, so a decompression bomb never gets allocated.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from glmserve.errors import InvalidRequest

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
MAX_BYTES = 5 * 1024 * 1024
MAX_SIDE = 6000
MAX_FRAMES = 100


@dataclass(frozen=True, slots=True)
class CheckedImage:
    data: bytes
    mime: str
    width: int
    height: int

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode()}"


class ImageError(InvalidRequest):
    """A 400 about one image; the message says which one and why."""


def from_base64(value: str, where: str) -> bytes:
    payload = value
    if value.startswith("data:"):
        header, sep, payload = value.partition(",")
        if not sep or ";base64" not in header:
            raise ImageError(f"{where}: a data URL must be base64-encoded", param=where)
        if not header[5:].startswith("image/"):
            raise ImageError(f"{where}: a data URL must have an image/* type", param=where)
    if len(payload) > (MAX_BYTES * 4) // 3 + 8:
        raise ImageError(f"{where}: the image is larger than {MAX_BYTES // (1024 * 1024)} MB", param=where)
    try:
        return base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ImageError(f"{where}: not valid base64 image data", param=where) from None


def check(data: bytes, where: str) -> CheckedImage:
    if len(data) > MAX_BYTES:
        raise ImageError(f"{where}: the image is larger than {MAX_BYTES // (1024 * 1024)} MB", param=where)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            fmt, (width, height) = image.format, image.size
            if width > MAX_SIDE or height > MAX_SIDE:
                raise ImageError(
                    f"{where}: {width}×{height} pixels is over the {MAX_SIDE}×{MAX_SIDE} limit", param=where
                )
            if fmt not in FORMATS:
                raise ImageError(f"{where}: format {fmt} is not one of jpeg, png, webp, gif", param=where)
            _count_frames(image, where)
            image = Image.open(io.BytesIO(data))
            image.verify()
            Image.open(io.BytesIO(data)).load()  # verify() misses truncated pixel data
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{where}: too many pixels (decompression bomb guard)", param=where) from None
    except UnidentifiedImageError:
        raise ImageError(f"{where}: not a readable jpeg, png, webp or gif image", param=where) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageError(f"{where}: the image data is truncated or corrupt", param=where) from None
    return CheckedImage(data, FORMATS[fmt], width, height)


def _count_frames(image: Image.Image, where: str) -> None:
    """Walk animation frames only up to the limit, so a 10,000-frame GIF costs 100 seeks."""
    for frame in range(1, MAX_FRAMES + 2):
        try:
            image.seek(frame)
        except EOFError:
            return
    raise ImageError(f"{where}: more than {MAX_FRAMES} animation frames", param=where)
