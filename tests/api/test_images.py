"""Image inputs through the API: checked images reach a vision deployment, everything else is a 400.

A gateway serves ``glm-4.6v`` from a fake OpenAI-compatible upstream marked ``vision = true``
(which records what it received) and ``text-only`` from the same upstream unmarked. Image URLs
are fetched from a test HTTP server on 127.0.0.2, trusted through ``images.allow_hosts``; a
recording listener on 0.0.0.0 (every local address; not trusted under its loopback names)
stands in for an internal service, so a fetch that slipped past the guard would reach it.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import openai
import pytest
from openai import OpenAI
from PIL import Image

from .fake_upstream import FakeUpstream
from .server_process import GlmServe
from .upstream_gateway import start_gateway
from .wire_schema import assert_error, assert_valid

PROMPT = "描述这张图片"
FETCH_TIMEOUT_S = 1.0  # images.fetch_timeout_s of the gateway


def make_jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    pixels = bytes((i * 7919) % 251 for i in range(size[0] * size[1] * 3))
    buf = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


JPEG = make_jpeg()
JPEG_B64 = base64.b64encode(JPEG).decode()


def seed_messages(url: str, count: int = 1) -> Any:
    """Zhipu's 图像理解 example: the image part first, then the question (``Any``: the SDK's types)."""
    images = [{"type": "image_url", "image_url": {"url": url}}] * count
    return [{"role": "user", "content": [*images, {"type": "text", "text": PROMPT}]}]


class ImageHandler(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        if self.path.startswith("/stall"):
            time.sleep(FETCH_TIMEOUT_S + 2)
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(JPEG)))
        self.end_headers()
        self.wfile.write(JPEG)

    def log_message(self, *args: object) -> None:
        pass


def serve(host: str) -> tuple[ThreadingHTTPServer, type[ImageHandler]]:
    handler = type("Handler", (ImageHandler,), {"hits": []})
    server = ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, handler


@pytest.fixture(scope="module")
def image_host() -> Iterator[tuple[str, type[ImageHandler]]]:
    server, handler = serve("127.0.0.2")
    yield f"http://127.0.0.2:{server.server_address[1]}", handler
    server.shutdown()


@pytest.fixture(scope="module")
def internal() -> Iterator[tuple[int, type[ImageHandler]]]:
    server, handler = serve("0.0.0.0")
    yield server.server_address[1], handler
    server.shutdown()


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        for model in ("glm-4.6v", "text-only"):  # the deployments send the public names
            fake.set_default(model, "ok")
        yield fake


@pytest.fixture(scope="module")
def gateway(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlmServe]:
    deployment = {"kind": "openai", "base_url": upstream.base_url}
    table = {
        "glm-4.6v": {"deployments": [deployment | {"vision": True}]},
        "text-only": {"deployments": [deployment]},
    }
    env = {
        "GLMSERVE_IMAGE_FETCH": "1",
        "GLMSERVE_IMAGES__ALLOW_HOSTS": '["127.0.0.2"]',
        "GLMSERVE_IMAGES__FETCH_TIMEOUT_S": str(FETCH_TIMEOUT_S),
    }
    with start_gateway(tmp_path_factory.mktemp("vision-gateway"), table, "unused", env) as started:
        yield started


@pytest.fixture(scope="module")
def vision(gateway: GlmServe) -> Iterator[OpenAI]:
    with OpenAI(api_key=gateway.api_key, base_url=gateway.paas_url, max_retries=0, timeout=60) as sdk:
        yield sdk


def received(upstream: FakeUpstream, before: int) -> list[dict[str, Any]]:
    """The chat bodies the upstream got since it had ``before`` of them."""
    return [r.body for r in upstream.requests_for("glm-4.6v")[before:]]


def refused(call: Any) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as caught:
        call()
    assert caught.value.status_code == 400
    body = caught.value.response.json()
    assert_error(body)
    assert body["error"]["code"] == "1210", body
    return caught.value


@pytest.mark.parametrize("form", ["data-url", "bare-base64", "http-url"])
def test_seed_example_reaches_the_vision_deployment_with_the_exact_bytes(
    vision: OpenAI, upstream: FakeUpstream, image_host: tuple[str, type[ImageHandler]], form: str
) -> None:
    root, handler = image_host
    url = {
        "data-url": f"data:image/jpeg;base64,{JPEG_B64}",
        "bare-base64": JPEG_B64,
        "http-url": f"{root}/cat.jpg",
    }[form]
    before, fetched = len(upstream.requests_for("glm-4.6v")), len(handler.hits)

    completion = vision.chat.completions.create(model="glm-4.6v", messages=seed_messages(url))

    assert completion.model == "glm-4.6v" and completion.choices[0].message.content
    [body] = received(upstream, before)
    image, text = body["messages"][0]["content"]
    assert text == {"type": "text", "text": PROMPT}
    assert image["type"] == "image_url"
    header, _, payload = image["image_url"]["url"].partition(",")
    assert header == "data:image/jpeg;base64"
    assert base64.b64decode(payload) == JPEG
    assert handler.hits[fetched:] == (["/cat.jpg"] if form == "http-url" else [])


def test_gpt_4_vision_alias_streams_from_the_vision_deployment(
    vision: OpenAI, upstream: FakeUpstream
) -> None:
    before = len(upstream.requests_for("glm-4.6v"))

    stream = vision.chat.completions.create(
        model="gpt-4-vision", messages=seed_messages(JPEG_B64), stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    assert text
    [body] = received(upstream, before)
    assert body["model"] == "glm-4.6v"
    assert base64.b64decode(body["messages"][0]["content"][0]["image_url"]["url"].split(",")[1]) == JPEG


def test_images_to_the_embedded_default_are_refused(client: OpenAI) -> None:
    error = refused(lambda: client.chat.completions.create(model="glm-4.6", messages=seed_messages(JPEG_B64)))
    assert "does not accept images" in error.message


def test_images_to_an_upstream_that_cannot_see_never_leave(vision: OpenAI, upstream: FakeUpstream) -> None:
    error = refused(
        lambda: vision.chat.completions.create(model="text-only", messages=seed_messages(JPEG_B64))
    )
    assert "does not accept images" in error.message
    assert upstream.requests_for("text-only") == []


def test_too_many_images_is_a_quick_400_naming_the_limit(vision: OpenAI, upstream: FakeUpstream) -> None:
    before = len(upstream.requests_for("glm-4.6v"))
    started = time.monotonic()

    error = refused(
        lambda: vision.chat.completions.create(model="glm-4.6v", messages=seed_messages(JPEG_B64, 200))
    )

    assert time.monotonic() - started < 5
    assert "200 images" in error.message and "limit is 8" in error.message
    assert received(upstream, before) == []


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (JPEG[: len(JPEG) * 2 // 3], "truncated or corrupt"),
        (b"GIF89a" + JPEG[6:], "not a readable"),
        (b"just some text", "not a readable"),
    ],
    ids=["truncated", "wrong-magic", "text"],
)
def test_hostile_images_are_400s_naming_the_problem(
    vision: OpenAI, upstream: FakeUpstream, data: bytes, problem: str
) -> None:
    before = len(upstream.requests_for("glm-4.6v"))
    url = "data:image/jpeg;base64," + base64.b64encode(data).decode()

    error = refused(lambda: vision.chat.completions.create(model="glm-4.6v", messages=seed_messages(url)))

    assert problem in error.message and "messages[0].content[0]" in error.message
    assert received(upstream, before) == []


@pytest.mark.parametrize("target", ["127.0.0.1", "localhost", "2130706433", "0.0.0.0"])
def test_image_urls_to_internal_addresses_are_refused_without_connecting(
    vision: OpenAI, upstream: FakeUpstream, internal: tuple[int, type[ImageHandler]], target: str
) -> None:
    port, handler = internal
    before, hits = len(upstream.requests_for("glm-4.6v")), len(handler.hits)
    url = f"http://{target}:{port}/secret.jpg"

    error = refused(lambda: vision.chat.completions.create(model="glm-4.6v", messages=seed_messages(url)))

    assert "non-public" in error.message
    assert handler.hits[hits:] == []
    assert received(upstream, before) == []


def test_the_internal_listener_is_reachable_when_trusted(
    vision: OpenAI, upstream: FakeUpstream, internal: tuple[int, type[ImageHandler]]
) -> None:
    """The control of the test above: through a trusted name the same listener serves the image."""
    port, handler = internal
    hits = len(handler.hits)

    completion = vision.chat.completions.create(
        model="glm-4.6v", messages=seed_messages(f"http://127.0.0.2:{port}/secret.jpg")
    )

    assert completion.choices[0].message.content
    assert handler.hits[hits:] == ["/secret.jpg"]


def test_the_metadata_address_is_refused(vision: OpenAI, upstream: FakeUpstream) -> None:
    """169.254.169.254 is not on this machine, so only the refusal can be observed, not the connect."""
    before = len(upstream.requests_for("glm-4.6v"))
    url = "http://169.254.169.254/latest/meta-data/"

    error = refused(lambda: vision.chat.completions.create(model="glm-4.6v", messages=seed_messages(url)))

    assert "non-public" in error.message
    assert received(upstream, before) == []


def test_a_stalled_image_url_is_a_400_after_the_fetch_timeout(
    vision: OpenAI, upstream: FakeUpstream, image_host: tuple[str, type[ImageHandler]]
) -> None:
    root, handler = image_host
    before, hits = len(upstream.requests_for("glm-4.6v")), len(handler.hits)
    started = time.monotonic()

    error = refused(
        lambda: vision.chat.completions.create(model="glm-4.6v", messages=seed_messages(f"{root}/stall.jpg"))
    )

    elapsed = time.monotonic() - started
    assert "timed out" in error.message
    assert FETCH_TIMEOUT_S <= elapsed < FETCH_TIMEOUT_S + 1.5, elapsed
    assert handler.hits[hits:] == ["/stall.jpg"], "the fetch was made, and given up"
    assert received(upstream, before) == []


def test_models_say_which_accept_images(vision: OpenAI, client: OpenAI, gateway: GlmServe) -> None:
    cards = {m.id: m.to_dict() for m in vision.models.list()}
    chat_card = {"kind": "chat", "dimensions": None, "rerank": None}
    assert cards["glm-4.6v"]["capabilities"] == {**chat_card, "vision": True}
    assert cards["gpt-4-vision"]["capabilities"] == {**chat_card, "vision": True}
    assert cards["text-only"]["capabilities"] == {**chat_card, "vision": False}
    assert vision.models.retrieve("gpt-4-vision").to_dict()["capabilities"]["vision"] is True
    assert client.models.retrieve("glm-4.6").to_dict()["capabilities"]["vision"] is False
    raw = httpx.get(gateway.paas_url + "models", headers={"Authorization": f"Bearer {gateway.api_key}"})
    assert_valid("ListModelsResponse", raw.json())
