"""Admission control: a bounded wait for a slot, 429 1302 past it, cancellation leaves the queue."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from . import server_process
from .credentials import new_zhipu_key
from .server_process import GlmServe
from .sse import parse_events


@pytest.fixture(scope="module")
def tight(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlmServe]:
    """A second server with one slot and room for one waiting request."""
    env = {"GLMSERVE_ENGINE__PARALLEL": "1", "GLMSERVE_ENGINE__MAX_WAITING": "1"}
    log = tmp_path_factory.mktemp("tight-log") / "server.log"
    with server_process.start(data_dir, log, new_zhipu_key(), env) as started:
        yield started


def body(max_tokens: int, stream: bool = True) -> dict[str, Any]:
    return {
        "model": "glm-4.5-flash",
        "messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": stream,
    }


def wait_health(server: GlmServe, **want: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        health = server.health()
        if all(health[k] == v for k, v in want.items()):
            return health
        time.sleep(0.05)
    raise AssertionError(f"health never reached {want}: {health}")


def test_queue_limit_429_cancel_and_recover(tight: GlmServe) -> None:
    headers = {"Authorization": f"Bearer {tight.api_key}"}
    url = tight.paas_url.rstrip("/") + "/chat/completions"
    running: dict[str, Any] = {}

    def run_first() -> None:
        with httpx.stream("POST", url, json=body(160), headers=headers, timeout=300) as response:
            running["events"] = parse_events(response.read().decode())

    first = threading.Thread(target=run_first)
    first.start()
    wait_health(tight, in_flight=1)

    # The waiting client gets no response headers until it has a slot, so it is a raw socket
    # that can give up (close) while it waits.
    payload = json.dumps(body(8)).encode()
    queued = socket.create_connection(("127.0.0.1", tight.port))
    try:
        queued.sendall(
            b"POST /api/paas/v4/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: Bearer {tight.api_key}\r\nContent-Type: application/json\r\n".encode()
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        wait_health(tight, waiting=1)
        sdk = openai.OpenAI(api_key=tight.api_key, base_url=tight.paas_url, max_retries=0)
        with pytest.raises(openai.RateLimitError) as refused:
            sdk.chat.completions.create(**body(8, stream=False))
        assert refused.value.code == "1302"
        assert 0 < int(refused.value.response.headers["retry-after"]) <= 60
    finally:
        queued.close()  # the client gives up while still waiting for a slot
    health = wait_health(tight, waiting=0)
    assert health["in_flight"] == 1, "cancelling a waiting request must not touch the running one"

    first.join(timeout=300)
    chunks = [e for e in running["events"] if isinstance(e, dict)]
    finish = [
        c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]
    ]
    assert finish == ["length"]
    assert [c["usage"]["completion_tokens"] for c in chunks if c.get("usage")] == [160]

    again = sdk.chat.completions.create(**body(4, stream=False))
    assert again.choices[0].finish_reason == "length"
