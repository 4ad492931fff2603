"""Image checks on hostile inputs, and the SSRF guard of the image fetcher."""

from __future__ import annotations

import asyncio
import base64
import io
import ipaddress
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from readme_sections import settings_table

from glmserve.config.images import ImageSettings
from glmserve.errors import InvalidRequest
from glmserve.frontends.chat.plan import to_generation
from glmserve.frontends.chat.protocol import ChatCompletionRequest
from glmserve.frontends.validation import parse
from glmserve.images import fetch as fetch_module
from glmserve.images.decode import MAX_BYTES, ImageError, check, from_base64
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
    """Serves ``routes[path]`` (default: a PNG) and records every path asked for.

    A route is ``("redirect", location)``, ``("body", content type, bytes)`` or ``("stall", s)``.
    """

    hits: ClassVar[list[str]] = []
    hosts: ClassVar[list[str]] = []
    routes: ClassVar[dict[str, tuple[object, ...]]] = {}
    delays: ClassVar[dict[str, float]] = {}  # seconds before answering that path

    def do_GET(self) -> None:
        cls = type(self)
        cls.hits.append(self.path)
        cls.hosts.append(self.headers.get("Host", ""))
        time.sleep(cls.delays.get(self.path, 0.0))
        route = cls.routes.get(self.path.split("?")[0], ("body", "image/png", encoded("PNG")))
        if route[0] == "redirect":
            self.send_response(302)
            self.send_header("Location", str(route[1]))
            self.end_headers()
            return
        if route[0] == "stall":
            time.sleep(float(str(route[1])))
            return
        _, kind, body = route
        assert isinstance(body, bytes)
        self.send_response(200)
        if kind:
            self.send_header("Content-Type", str(kind))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def serve(host: str, port: int = 0) -> tuple[ThreadingHTTPServer, type[Recorder]]:
    handler = type("Handler", (Recorder,), {"hits": [], "hosts": [], "routes": {}, "delays": {}})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, handler


@pytest.fixture
def listener() -> Iterator[tuple[ThreadingHTTPServer, type[Recorder]]]:
    server, handler = serve("127.0.0.1")
    yield server, handler
    server.shutdown()


def fetch(url: str, policy: FetchPolicy, transport: httpx.AsyncBaseTransport | None = None) -> bytes:
    async def run() -> bytes:
        async with httpx.AsyncClient(transport=transport) as client:
            return await fetch_image(client, url, policy)

    return asyncio.run(run())


ON = FetchPolicy(enabled=True, timeout_s=5)
TRUSTED = FetchPolicy(enabled=True, timeout_s=5, allow_hosts=frozenset({"127.0.0.1", "127.0.0.2"}))


class RecordingTransport(httpx.AsyncBaseTransport):
    """Answers every request with a PNG, whatever its address: a request sent is a request seen."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, headers={"Content-Type": "image/png"}, content=encoded("PNG"))


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
def test_private_and_local_targets_are_refused_without_connecting(host: str) -> None:
    # The transport answers any address, so a fetch that got past the check would reach it.
    url = f"http://{host}:8080/cat.png?token=secret"
    refused = RecordingTransport()
    with pytest.raises(ImageError, match=r"non-public"):
        fetch(url, ON, refused)
    assert refused.requests == []
    # The control: trusted, the same URL is fetched, through the same transport.
    trusted = RecordingTransport()
    hostname = urlsplit(url).hostname or ""
    policy = FetchPolicy(enabled=True, timeout_s=5, allow_hosts=frozenset({hostname}))
    assert fetch(url, policy, trusted) == encoded("PNG")
    assert len(trusted.requests) == 1


def test_the_connection_goes_to_the_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS may answer differently at connect time; the fetch connects to the address it checked."""
    checked, _ = serve("127.0.0.2")
    port = checked.server_address[1]
    try:
        other, other_handler = serve("127.0.0.1", port)  # where the system resolves localhost
    except OSError:
        checked.shutdown()
        pytest.skip(f"port {port} is taken on 127.0.0.1")
    checked_handler = checked.RequestHandlerClass
    assert issubclass(checked_handler, Recorder)
    answers = iter([[ipaddress.ip_address("127.0.0.2")]])

    async def first_answer_then_none(host: str, port: int) -> list[ipaddress.IPv4Address]:
        return next(answers)  # a second lookup (by the HTTP client) would raise StopIteration

    monkeypatch.setattr(fetch_module, "resolve", first_answer_then_none)
    policy = FetchPolicy(enabled=True, timeout_s=5, allow_hosts=frozenset({"localhost"}))
    try:
        assert fetch(f"http://localhost:{port}/cat.png", policy) == encoded("PNG")
    finally:
        checked.shutdown()
        other.shutdown()
    assert checked_handler.hits == ["/cat.png"] and checked_handler.hosts == [f"localhost:{port}"]
    assert other_handler.hits == []


def test_redirect_from_a_trusted_host_to_a_private_one_is_refused(listener) -> None:
    server, handler = listener
    target = f"http://127.0.0.1:{server.server_address[1]}/internal"
    redirector, redirector_handler = serve("127.0.0.2")
    redirector_handler.routes["/start"] = ("redirect", target)
    try:
        # 127.0.0.2 stands in for a public host (trusted by the policy); the redirect target is not.
        trusted = FetchPolicy(enabled=True, timeout_s=5, allow_hosts=frozenset({"127.0.0.2"}))
        with pytest.raises(ImageError, match="non-public"):
            fetch(f"http://127.0.0.2:{redirector.server_address[1]}/start", trusted)
        # The control: trusted too, the same redirect is followed to the listener.
        assert fetch(f"http://127.0.0.2:{redirector.server_address[1]}/start", TRUSTED) == encoded("PNG")
    finally:
        redirector.shutdown()
    assert redirector_handler.hits == ["/start", "/start"]
    assert handler.hits == ["/internal"], "the private target is contacted only when trusted"


@pytest.mark.parametrize("hops", [3, 4])
def test_at_most_three_redirects_are_followed(listener, hops: int) -> None:
    server, handler = listener
    root = f"http://127.0.0.1:{server.server_address[1]}"
    for n in range(1, hops + 1):
        handler.routes[f"/hop/{n}"] = ("redirect", f"{root}/hop/{n - 1}")
    if hops <= FetchPolicy().max_redirects:
        assert fetch(f"{root}/hop/{hops}", TRUSTED) == encoded("PNG")
        assert len(handler.hits) == hops + 1
    else:
        with pytest.raises(ImageError, match="more than 3 redirects"):
            fetch(f"{root}/hop/{hops}", TRUSTED)
        assert handler.hits == [f"/hop/{n}" for n in range(hops, 0, -1)], "the fourth is never followed"


@pytest.mark.parametrize(
    ("size", "accepted"), [(MAX_BYTES, True), (MAX_BYTES + 1, False)], ids=["5MB", "5MB+1"]
)
def test_a_fetched_body_may_be_5_mb_and_no_more(listener, size: int, accepted: bool) -> None:
    server, handler = listener
    body = bytes(size)
    handler.routes["/big.png"] = ("body", "image/png", body)
    url = f"http://127.0.0.1:{server.server_address[1]}/big.png"
    if accepted:
        assert fetch(url, TRUSTED) == body
    else:
        with pytest.raises(ImageError, match="larger than 5 MB"):
            fetch(url, TRUSTED)


@pytest.mark.parametrize(
    ("kind", "accepted"),
    [("image/png", True), ("IMAGE/PNG; charset=binary", True), ("text/html", False), ("", False)],
    ids=["image", "image-with-params", "html", "none"],
)
def test_only_image_content_types_are_fetched(listener, kind: str, accepted: bool) -> None:
    server, handler = listener
    handler.routes["/x"] = ("body", kind, encoded("PNG"))
    url = f"http://127.0.0.1:{server.server_address[1]}/x"
    if accepted:
        assert fetch(url, TRUSTED) == encoded("PNG")
    else:
        with pytest.raises(ImageError, match=f"served '{kind or 'no content type'}', not an image"):
            fetch(url, TRUSTED)


def test_a_stalled_fetch_times_out_after_the_timeout(listener) -> None:
    server, handler = listener
    handler.routes["/slow.png"] = ("stall", 5)
    policy = FetchPolicy(enabled=True, timeout_s=0.5, allow_hosts=frozenset({"127.0.0.1"}))
    started = time.monotonic()
    with pytest.raises(ImageError, match="timed out"):
        fetch(f"http://127.0.0.1:{server.server_address[1]}/slow.png", policy)
    assert 0.5 <= time.monotonic() - started < 2.0


def test_the_timeout_covers_every_redirect_together(listener) -> None:
    """Two hops of 0.6 s each: within the timeout one by one, past it together."""
    server, handler = listener
    root = f"http://127.0.0.1:{server.server_address[1]}"
    handler.routes["/hop"] = ("redirect", f"{root}/cat.png")
    handler.delays.update({"/hop": 0.6, "/cat.png": 0.6})
    policy = FetchPolicy(enabled=True, timeout_s=1.0, allow_hosts=frozenset({"127.0.0.1"}))
    started = time.monotonic()
    with pytest.raises(ImageError, match="timed out"):
        fetch(f"{root}/hop", policy)
    assert 1.0 <= time.monotonic() - started < 2.0
    assert handler.hits == ["/hop", "/cat.png"]


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
    assert fetch(f"http://127.0.0.1:{server.server_address[1]}/x.png", TRUSTED) == encoded("PNG")
    assert handler.hits == ["/x.png"]


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
    table = settings_table()
    assert f"images.{name}" in table, "a row of the README's settings table names it"
    assert f"GLMSERVE_IMAGES__{name.upper()}" in table[f"images.{name}"]


def test_glmserve_image_fetch_is_short_for_images_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    from glmserve.config.settings import load_settings

    assert load_settings().images.fetch is False
    monkeypatch.setenv("GLMSERVE_IMAGE_FETCH", "1")
    assert load_settings().images.fetch is True
