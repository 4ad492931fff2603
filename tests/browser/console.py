"""What the console tests do in the page: sign in, send a playground message, wait for the answer."""

from __future__ import annotations

from typing import Any

import httpx
from api.server_process import GlmServe

ANSWER_TIMEOUT_MS = 240_000  # the embedded model shares two CPU cores with everything else


def sign_in(page: Any, key: str, hash_: str = "#/playground") -> None:
    page.goto(f"/{hash_}")
    page.fill("#signin-key", key)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#page-title")


def choose_model(page: Any, model: str) -> None:
    page.wait_for_function(
        "m => [...document.querySelectorAll('#model option')].some(o => o.value === m)", arg=model
    )
    page.select_option("#model", model)


def send(page: Any, text: str) -> None:
    page.fill("#prompt", text)
    page.click("#send")


def wait_answer(page: Any, timeout_ms: int = ANSWER_TIMEOUT_MS) -> Any:
    """The last answer once its stream has ended (its stats are shown)."""
    page.wait_for_selector("#send:text('Send')", timeout=timeout_ms)
    answer = page.locator(".msg-assistant").last
    answer.locator(".msg-meta .stat").first.wait_for(timeout=timeout_ms)
    return answer


def api(server: GlmServe, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key or server.api_key}"}
    return httpx.Client(base_url=server.root, headers=headers, timeout=120)


def create_key(server: GlmServe, **body: Any) -> tuple[str, str]:
    with api(server) as http:
        response = http.post("/admin/keys", json=body)
    assert response.status_code == 201, response.text
    key = str(response.json()["key"])
    return key, key.split(".", 1)[0]


def echo_chat(server: GlmServe, key: str, text: str = "hello", model: str = "echo") -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 8}
    with api(server, key) as http:
        return http.post("/v1/chat/completions", json=body)
