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
from typing import Any

import httpx

from glmserve.errors import EngineError, InvalidRequest

TIMEOUT_S = 60.0
_GENERATION_ONLY = ("stream", "stream_options", "verbose", "timings_per_token")


class Loopback:
    def __init__(self, key: str) -> None:
        self._headers = {"authorization": f"Bearer {key}"}
        self._base: str | None = None
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def attach(cls, params: Any) -> Loopback:
        """Configure ``params`` (before the Server is built): loopback only, behind a key."""
        key = secrets.token_urlsafe(32)
        params.hostnames = ["127.0.0.1"]
        params.api_keys = [key]
        params.n_threads_http = 1
        params.endpoint_slots = params.endpoint_metrics = params.endpoint_props = False
        return cls(key)

    def bind(self, server: Any) -> None:
        """The address the built Server listens on."""
        self._base = str(server.listening_address)

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._client is None:
            assert self._base is not None, "Loopback.bind was not called"
            self._client = httpx.AsyncClient(
                base_url=self._base, headers=self._headers, timeout=TIMEOUT_S, trust_env=False
            )
        try:
            response = await self._client.post(path, json=body)
            payload: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise EngineError(f"llama.cpp's {path} did not answer: {type(exc).__name__}") from None
        if response.status_code == 400:  # the request's fault, e.g. a template that refuses it
            raise InvalidRequest(f"cannot render the prompt: {_message(payload)}")
        if response.status_code != 200:
            raise EngineError(f"llama.cpp's {path} failed: {_message(payload)}")
        return payload

    async def tokenize(self, text: str, add_special: bool) -> list[int]:
        body = {"content": text, "add_special": add_special, "parse_special": True}
        return [int(t) for t in (await self.post("/tokenize", body))["tokens"]]

    async def detokenize(self, tokens: list[int]) -> str:
        return str((await self.post("/detokenize", {"tokens": tokens}))["content"])

    async def apply_template(self, body: dict[str, Any]) -> str:
        """The prompt llama.cpp renders for a chat completions body (messages, tools…)."""
        rendered = await self.post(
            "/apply-template", {k: v for k, v in body.items() if k not in _GENERATION_ONLY}
        )
        return str(rendered["prompt"])

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def _message(payload: dict[str, Any]) -> str:
    error = payload.get("error")
    return str(error.get("message")) if isinstance(error, dict) else "no message"
