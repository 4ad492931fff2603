"""llama.cpp's own tokenizer routes of an in-process ``xllamacpp.Server``, reached over loopback.

xllamacpp's Python API offers chat completions, completions, embeddings and rerank, but not
``/tokenize``, ``/detokenize`` or ``/apply-template``; the same server answers those over HTTP on
a loopback port it picks. ``Loopback.attach`` keeps that listener on 127.0.0.1 and puts it behind
a random API key made for this process (never logged, never leaving it): without one, anyone on
the host could use the model past glmserve's keys and limits. Token ids and chat-template
renderings so come from llama.cpp itself, from the model already loaded, without running it.
"""

from __future__ import annotations

import secrets
import socket
from typing import Any

import httpx

from glmserve.errors import EngineError

TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Loopback:
    def __init__(self, port: int, key: str) -> None:
        self._base = f"http://127.0.0.1:{port}"
        self._headers = {"authorization": f"Bearer {key}"}
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def attach(cls, params: Any) -> Loopback:
        """Configure ``params`` (before the Server is built) to listen on loopback only."""
        key = secrets.token_urlsafe(32)
        port = _free_port()
        params.port = port
        params.hostnames = ["127.0.0.1"]
        params.api_keys = [key]
        params.n_threads_http = 1
        params.endpoint_slots = False
        params.endpoint_metrics = False
        params.endpoint_props = False
        return cls(port, key)

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self._base, headers=self._headers, timeout=TIMEOUT_S,
                                             trust_env=False)  # fmt: skip
        try:
            response = await self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise EngineError(f"llama.cpp's {path} is unreachable: {type(exc).__name__}") from None
        payload: dict[str, Any] = response.json()
        if response.status_code != 200:
            message = (payload.get("error") or {}).get("message", response.text[:200])
            raise EngineError(f"llama.cpp's {path} failed: {message}")
        return payload

    async def tokenize(self, text: str, add_special: bool) -> list[int]:
        body = {"content": text, "add_special": add_special, "parse_special": True}
        return [int(t) for t in (await self.post("/tokenize", body))["tokens"]]

    async def detokenize(self, tokens: list[int]) -> str:
        return str((await self.post("/detokenize", {"tokens": tokens}))["content"])

    async def apply_template(self, body: dict[str, Any]) -> str:
        """The prompt llama.cpp renders for a chat completions body (messages, tools…)."""
        body = {k: v for k, v in body.items() if k not in ("stream", "stream_options", "verbose")}
        return str((await self.post("/apply-template", body))["prompt"])

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def _message(payload: dict[str, Any]) -> str:
    error = payload.get("error")
    return str(error.get("message")) if isinstance(error, dict) else "no message"
