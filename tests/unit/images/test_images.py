"""Image checks on hostile inputs, and the SSRF guard of the image fetcher."""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from PIL import Image

from glmserve.config.images import ImageSettings
from glmserve.errors import InvalidRequest
from glmserve.frontends.chat.plan import to_generation
from glmserve.frontends.chat.protocol import ChatCompletionRequest
from glmserve.frontends.validation import parse
from glmserve.images.decode import ImageError, check, from_base64
from glmserve.images.fetch import FetchPolicy, fetch_image
from glmserve.images.inputs import ImageLoader, refuse_images


def encoded(fmt: str, size: tuple[int, int] = (8, 6), **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format=fmt, **kw)
    return buf.getvalue()


def noisy_png() -> bytes:
    buf = io.BytesIO()
    Image.frombytes("L", (64, 64), bytes((i * 7919) % 251 for i in range(64 * 64))).save(buf, format="PNG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width``×``height`` pixels but carries almost no data (a bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_accepted_formats(fmt: str) -> None:
    image = check(encoded(fmt), "img")
    assert (image.width, image.height) == (8, 6) and image.mime == f"image/{fmt.lower()}"


def test_data_url_and_bare_base64_give_the_same_bytes() -> None:
    raw = encoded("PNG")
    b64 = base64.b64encode(raw).decode()
    assert from_base64(f"data:image/png;base64,{b64}", "i") == raw == from_base64(b64, "i")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (noisy_png()[: len(noisy_png()) // 2], "truncated or corrupt"),
        (b"GIF89a" + encoded("PNG")[6:], "not a readable"),
        (b"hello world, not an image", "not a readable"),
        (png_header_only(20000, 20000), "too many pixels"),
        (png_header_only(7000, 100), "over the 6000×6000 limit"),
        (encoded("BMP"), "not one of"),
    ],
    ids=["truncated", "wrong-magic", "text", "bomb-20000", "too-wide", "bmp"],
)
def test_hostile_images_are_400s_naming_the_problem(data: bytes, problem: str) -> None:
    with pytest.raises(ImageError) as info:
        check(data, "messages[0].content[1]")
    assert problem in info.value.message and info.value.status == 400


def test_animated_gif_with_ten_thousand_frames() -> None:
    frames = [Image.new("RGB", (1, 1), (255, 255, 255) if i % 2 else (0, 0, 0)) for i in range(10_000)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match="animation frames"):
        check(buf.getvalue(), "img")


@pytest.mark.parametrize(
    "value", ["data:text/plain;base64,aGk=", "data:image/png,notbase64", "!!!not base64!!!"]
)
def test_bad_base64_and_data_urls(value: str) -> None:
    with pytest.raises(ImageError):
        from_base64(value, "img")


class Recorder(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []
    redirect_to: str | None = None

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        if type(self).redirect_to:
            self.send_response(302)
            self.send_header("Location", type(self).redirect_to or "")
            self.end_headers()
            return
        body = encoded("PNG")
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[tuple[ThreadingHTTPServer, type[Recorder]]]:
    handler = type("Handler", (Recorder,), {"hits": [], "redirect_to": None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()


def fetch(url: str, policy: FetchPolicy) -> bytes:
    async def run() -> bytes:
        async with httpx.AsyncClient() as client:
            return await fetch_image(client, url, policy)

    return asyncio.run(run())


ON = FetchPolicy(enabled=True, timeout_s=5)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "2130706433",
        "0177.0.0.1",
        "127.1",
        "10.1.2.3",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "[fe80::1]",
        "224.0.0.1",
    ],
)
def test_private_and_local_targets_are_refused_without_connecting(listener, host: str) -> None:
    server, handler = listener
    port = server.server_address[1]
    with pytest.raises(ImageError, match=r"non-public|does not resolve"):
        fetch(f"http://{host}:{port}/cat.png?token=secret", ON)
    assert handler.hits == []


def test_redirect_from_a_trusted_host_to_a_private_one_is_refused(listener) -> None:
    server, handler = listener
    target = f"http://127.0.0.1:{server.server_address[1]}/internal"
    redirector_cls = type("Redirector", (Recorder,), {"hits": [], "redirect_to": target})
    redirector = ThreadingHTTPServer(("127.0.0.2", 0), redirector_cls)
    threading.Thread(target=redirector.serve_forever, daemon=True).start()
    try:
        # 127.0.0.2 stands in for a public host (trusted by the policy); the redirect target is not.
        trusted = FetchPolicy(enabled=True, timeout_s=5, allow_hosts=frozenset({"127.0.0.2"}))
        with pytest.raises(ImageError, match="non-public"):
            fetch(f"http://127.0.0.2:{redirector.server_address[1]}/start", trusted)
    finally:
        redirector.shutdown()
    assert redirector_cls.hits == ["/start"]
    assert handler.hits == [], "the private target must never be contacted"


def test_trusted_host_fetch_returns_the_exact_bytes(listener) -> None:
    server, _ = listener
    port = server.server_address[1]
    trusted = FetchPolicy(enabled=True, timeout_s=5, allow_hosts=frozenset({"127.0.0.1"}))
    assert fetch(f"http://127.0.0.1:{port}/cat.png", trusted) == encoded("PNG")


def test_fetching_is_off_unless_enabled(listener) -> None:
    server, handler = listener
    with pytest.raises(ImageError, match="disabled"):
        fetch(f"http://127.0.0.1:{server.server_address[1]}/x.png", FetchPolicy())
    assert handler.hits == []


def image_request(*urls: str) -> ChatCompletionRequest:
    parts = [{"type": "image_url", "image_url": {"url": u, "detail": "high"}} for u in urls]
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [*parts, {"type": "text", "text": "描述这张图片"}]},
    ]
    return parse(ChatCompletionRequest, {"model": "glm-4.6v", "messages": messages})


def load(req: ChatCompletionRequest, max_images: int = 8) -> dict[tuple[int, int], str]:
    async def run() -> dict[tuple[int, int], str]:
        loader = ImageLoader(FetchPolicy(), max_images)
        try:
            return await loader.to_data_urls(req.messages)
        finally:
            await loader.close()

    return asyncio.run(run())


def test_vision_messages_carry_every_image_as_a_checked_data_url() -> None:
    raw = encoded("PNG")
    b64 = base64.b64encode(raw).decode()
    req = image_request(f"data:image/png;base64,{b64}", b64)
    gen = to_generation(req, load(req))
    assert gen.messages[0] == {"role": "system", "content": "be brief"}
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64}"}}
    assert gen.messages[1]["content"] == [image, image, {"type": "text", "text": "描述这张图片"}]


def test_too_many_images_are_refused_before_any_is_decoded() -> None:
    with pytest.raises(ImageError, match="3 images in one request; the limit is 2"):
        load(image_request("!!!", "!!!", "!!!"), max_images=2)


def test_images_without_a_vision_route_are_never_dropped() -> None:
    req = image_request(base64.b64encode(encoded("PNG")).decode())
    with pytest.raises(InvalidRequest, match="does not accept images"):
        refuse_images(req.messages, "glm-4.6")
    with pytest.raises(InvalidRequest, match="does not accept images"):
        to_generation(req)


def test_images_only_in_user_messages() -> None:
    req = image_request(base64.b64encode(encoded("PNG")).decode())
    system = req.messages[1].model_copy(update={"role": "system"})
    with pytest.raises(ImageError, match=r"messages\[0\].content\[0\]: images are accepted only in user"):
        load(req.model_copy(update={"messages": [system]}))


@pytest.mark.parametrize("name", list(ImageSettings.model_fields))
def test_every_image_setting_is_in_the_readme(name: str) -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    assert f"images.{name}" in readme
    assert f"GLMSERVE_IMAGES__{name.upper()}" in readme or f"…__{name.upper()}" in readme


def test_glmserve_image_fetch_is_short_for_images_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    from glmserve.config.settings import load_settings

    assert load_settings().images.fetch is False
    monkeypatch.setenv("GLMSERVE_IMAGE_FETCH", "1")
    assert load_settings().images.fetch is True
