"""An HTTP upstream as an Engine: OpenAI-compatible (vLLM, SGLang, llama-server, Ollama, Zhipu,
OpenAI) or Anthropic-compatible (``anthropic``: Anthropic, Zhipu's ``/api/anthropic``); what the
two protocols differ in is in ``dialects``.

One keep-alive pool per upstream, on glmserve's own HTTP/1.1 client (``http_client``, measured
against aiohttp and httpx on this path: ``bench/upstream_clients.py``); connection failures
before any response byte are retried at once on a fresh connection (``connection``). Each
generation is one streamed ``POST`` (``.../chat/completions`` or ``.../v1/messages``):

- timeouts: ``connect``; ``first_byte``, from sending the request to the first event; and
  ``between_chunks`` once events flow. Time the consumer spends elsewhere is not counted;
- redirects are not followed (so no credential follows one); proxies and .netrc are ignored;
- every failure becomes a ``GlmError`` (see ``upstream_errors``): before the first event it is
  raised as is, so the deployment chain can retry; after it, the chain reports it in-band;
- closing the iterator (client gone) closes the upstream connection at once and synchronously,
  so it also happens while the task is being cancelled.

A response that is not an event stream is read whole: an error (Zhipu answers errors with HTTP
200) or a whole completion. Embeddings and rerank are one JSON ``POST`` each (``post_json``,
``tasks.py``) with the same deadline and error translation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import orjson

from glmserve.config.deployments import Deployment
from glmserve.engines.base import CompletionJob, EmbeddingJob, Event, Generation, RerankJob, Text
from glmserve.engines.counting import estimate_prompt_tokens
from glmserve.engines.upstream import anthropic_request, tasks
from glmserve.engines.upstream import errors as upstream_errors
from glmserve.engines.upstream.connection import Connections
from glmserve.engines.upstream.dialects import AnthropicDialect, Stream, dialect_for
from glmserve.engines.upstream.http_client import (
    CannotConnect,
    ClientError,
    Disconnected,
    PayloadError,
    Response,
)
from glmserve.engines.upstream.request import credential
from glmserve.engines.upstream.sse import SseDecoder, SseTooLarge
from glmserve.errors import GlmError, InvalidRequest, UpstreamError, UpstreamTimeout

log = logging.getLogger("glmserve.upstream")
MAX_JSON_BODY = 32 * 1024 * 1024
MAX_ERROR_BODY = 64 * 1024
DRAIN_S = 1.0
USER_AGENT = "glmserve"


class UpstreamEngine:
    def __init__(self, label: str, deployment: Deployment, model: str, key: str | None):
        assert deployment.base_url is not None
        self.name = label
        self.kind = deployment.kind
        self.model = model
        root = deployment.base_url.rstrip("/")
        self._dialect = dialect_for(deployment.kind, deployment.auth)
        self._root = root
        self._url = f"{root}/{self._dialect.path}"
        health = deployment.health_path
        if health == "models":  # the default: the protocol's own list of models
            health = self._dialect.default_health_path
        self._health_url = f"{root}/{health.lstrip('/')}" if health else None
        parts = urlsplit(root)
        self._address = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        self._timeouts = deployment.timeouts
        self._credential: Callable[[], str | None] = credential(deployment.kind, key, deployment.auth)
        pool = deployment.max_concurrency or 256
        self.connections = Connections(pool, self._timeouts.connect, deployment.connection_retries)
        self.in_flight = 0

    def _headers(self, accept: str, gen: Generation | None = None) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": accept, "user-agent": USER_AGENT}
        headers.update(self._dialect.headers(gen, self._credential()))
        return headers

    async def stream(self, generation: Generation) -> AsyncIterator[Event]:
        body = orjson.dumps(self._dialect.body(generation, self.model))
        loop = asyncio.get_running_loop()
        first_deadline = loop.time() + self._timeouts.connect + self._timeouts.first_byte
        response: Response | None = None
        self.in_flight += 1
        try:
            response = await self._send(body, first_deadline, generation)
            if response.status != 200:
                raise await self._error(response)
            if "text/event-stream" not in response.headers.get("content-type", ""):
                for event in await self._whole(response, first_deadline):
                    yield event
                return
            async for event in self._events(response, first_deadline):
                yield event
        except (ClientError, OSError) as exc:
            if isinstance(exc, TimeoutError):
                raise UpstreamTimeout(
                    f"deployment {self.name}: connect timed out", unreachable=True
                ) from None
            unreachable = isinstance(exc, CannotConnect)
            raise UpstreamError(
                f"deployment {self.name}: {_describe(exc)}", unreachable=unreachable
            ) from None
        finally:
            self.in_flight -= 1
            if response is not None:
                response.close()  # a no-op once released to the pool; else drops the connection

    async def embed(self, job: EmbeddingJob) -> AsyncIterator[Event]:
        payload = await self.post_json("embeddings", tasks.embedding_body(job, self.model))
        for event in tasks.embedding_events(payload, self.name, len(job.inputs)):
            yield event

    async def rerank(self, job: RerankJob) -> AsyncIterator[Event]:
        payload = await self.post_json("rerank", tasks.rerank_body(job, self.model))
        for event in tasks.rerank_events(payload, self.name, len(job.documents)):
            yield event

    async def complete(self, job: CompletionJob) -> AsyncIterator[Event]:
        """Legacy completions are served by embedded models only: the request's fault, not retried."""
        raise InvalidRequest(f"legacy completions are not served by upstream deployments ({self.kind})",
                             param="model")  # fmt: skip
        yield  # an async generator, like every capability

    async def post_json(self, path: str, payload: dict[str, Any]) -> Any:
        """``POST {base_url}/{path}`` and its JSON answer (embeddings, rerank); failures are ``GlmError``s."""
        deadline = asyncio.get_running_loop().time() + self._timeouts.connect + self._timeouts.first_byte
        response: Response | None = None
        self.in_flight += 1
        try:
            url = f"{self._root}/{path}"
            response = await self._send(orjson.dumps(payload), deadline, None, url, "application/json")
            if response.status != 200:
                raise await self._error(response)
            payload = orjson.loads(await self._read_json(response, deadline))
            if (error := upstream_errors.error_in(payload)) is not None:
                raise upstream_errors.from_error(error, 200, self.name)
            return payload
        except (ClientError, OSError) as exc:
            raise UpstreamError(f"deployment {self.name}: {_describe(exc)}") from None
        except orjson.JSONDecodeError:
            raise UpstreamError(f"deployment {self.name} answered with invalid JSON") from None
        finally:
            self.in_flight -= 1
            if response is not None:
                response.close()

    async def _read_json(self, response: Response, deadline: float) -> bytes:
        try:
            async with asyncio.timeout_at(deadline):
                return await _read_body(response, MAX_JSON_BODY)
        except TimeoutError:
            raise UpstreamTimeout(f"deployment {self.name} did not finish its answer in time") from None

    async def _send(
        self,
        body: bytes,
        deadline: float,
        gen: Generation | None,
        url: str | None = None,
        accept: str = "text/event-stream",
    ) -> Response:
        headers = self._headers(accept, gen)
        try:
            async with asyncio.timeout_at(deadline):
                return await self.connections.post(url or self._url, body, headers)
        except TimeoutError:
            raise UpstreamTimeout(self._silence(started=False)) from None

    async def _error(self, response: Response) -> GlmError:
        try:
            async with asyncio.timeout(self._timeouts.between_chunks):
                raw = await _read_body(response, MAX_ERROR_BODY, truncate=True)
        except TimeoutError:
            raw = b""
        error = self._dialect.error(response.status, raw, response.headers, self.name)
        log.warning("deployment %s answered HTTP %s: %s", self.name, response.status, error.message)
        return error

    async def _whole(self, response: Response, deadline: float) -> list[Event]:
        try:
            async with asyncio.timeout_at(deadline):
                raw = await _read_body(response, MAX_JSON_BODY)
        except TimeoutError:
            raise UpstreamTimeout(f"deployment {self.name} did not finish its answer in time") from None
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"deployment {self.name} answered with invalid JSON") from None
        try:
            return self._dialect.whole(payload, self.name)
        except (ValueError, AttributeError):
            raise UpstreamError(f"deployment {self.name} answered with no completion") from None

    async def _events(self, response: Response, deadline: float) -> AsyncIterator[Event]:
        loop = asyncio.get_running_loop()
        decoder, mapper = SseDecoder(), self._dialect.stream(self.name)
        started = done = False
        while not done:
            try:
                async with asyncio.timeout_at(deadline if not started else loop.time() + self._between):
                    block = await response.readany()
            except TimeoutError:
                raise UpstreamTimeout(self._silence(started)) from None
            if not block:
                break
            for event in self._decode(decoder, mapper, block):
                if event is None:
                    done = True
                    break
                if isinstance(event, GlmError):
                    raise event
                started = True
                yield event
        if not done and mapper.finish is None:
            raise UpstreamError(f"deployment {self.name} closed the stream before it finished")
        for event in mapper.end():
            yield event
        await self._drain(response)

    @property
    def _between(self) -> float:
        return self._timeouts.between_chunks

    def _silence(self, started: bool) -> str:
        if started:
            return f"deployment {self.name} went silent for {self._between:g}s mid-stream"
        return f"deployment {self.name} sent no event within its first_byte timeout"

    def _decode(self, decoder: SseDecoder, mapper: Stream, block: bytes) -> list[Event | GlmError | None]:
        """Events of one block, then the error that ended it, if any; ``None`` marks the end
        (``[DONE]``, ``message_stop``).

        Events before an error in the same block still count as delivered before it. Text deltas
        that arrived in one block travel as one ``Text``: they reached glmserve at the same
        moment, and each event costs a pass through the chain, the meter and the renderer
        (an upstream's 16 chunks are about two blocks on loopback).
        """
        out: list[Event | GlmError | None] = []
        try:
            for sse in decoder.feed(block):
                try:
                    events = mapper.feed(sse)
                except GlmError as exc:
                    out.append(exc)
                    return out
                if events is None:
                    out.append(None)
                    return out
                for event in events:
                    if type(event) is Text and out and type(out[-1]) is Text:
                        out[-1] = Text(out[-1].delta + event.delta)  # type: ignore[union-attr]
                    else:
                        out.append(event)
        except (orjson.JSONDecodeError, SseTooLarge, ValueError) as exc:
            out.append(UpstreamError(f"deployment {self.name} sent a malformed event: {exc}"))
        return out

    async def _drain(self, response: Response) -> None:
        """Read to the end after ``[DONE]`` so the connection goes back to the pool."""
        if response.at_eof():
            response.release()
            return
        try:
            async with asyncio.timeout(DRAIN_S):
                while await response.readany():
                    pass
            response.release()
        except (TimeoutError, ClientError, OSError):
            response.close()

    async def probe(self) -> bool:
        """One health check on a fresh connection: GET the health path (``models`` by default),
        or, with none configured, whether the upstream accepts a TCP connection."""
        try:
            async with asyncio.timeout(self._timeouts.connect + 5):
                if self._health_url is None:
                    _, writer = await asyncio.open_connection(*self._address)
                    writer.close()
                    return True
                response = await self.connections.get(self._health_url, self._headers("application/json"))
                try:
                    await response.read()
                finally:
                    response.close()
                return response.status < 300
        except (TimeoutError, ClientError, OSError):
            return False

    async def count_prompt_tokens(self, generation: Generation) -> int:
        """An ``anthropic`` upstream's own ``count_tokens``; the estimate where it has none."""
        if not isinstance(self._dialect, AnthropicDialect):
            return estimate_prompt_tokens(generation)
        body = orjson.dumps(anthropic_request.prompt_body(generation, self.model))
        url = f"{self._root}/{self._dialect.count_path}"
        try:
            async with asyncio.timeout(self._timeouts.connect + self._timeouts.first_byte):
                headers = self._headers("application/json", generation)
                response = await self.connections.post(url, body, headers)
                try:
                    raw = await response.read()
                    response.release()
                finally:
                    response.close()
                payload = orjson.loads(raw) if response.status == 200 else None
        except (TimeoutError, ClientError, OSError, orjson.JSONDecodeError):
            payload = None
        tokens = payload.get("input_tokens") if isinstance(payload, dict) else None
        if isinstance(tokens, int) and not isinstance(tokens, bool):
            return tokens
        log.info("deployment %s cannot count tokens; estimated", self.name)
        return estimate_prompt_tokens(generation)

    async def close(self) -> None:
        await self.connections.close()


async def _read_body(response: Response, limit: int, truncate: bool = False) -> bytes:
    parts: list[bytes] = []
    size = 0
    while block := await response.readany():
        parts.append(block)
        size += len(block)
        if size > limit:
            if truncate:
                break
            raise UpstreamError(f"an upstream answer exceeded {limit} bytes")
    return b"".join(parts)[:limit]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, CannotConnect):
        return f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})"
    if isinstance(exc, Disconnected):
        return "the upstream closed the connection"
    if isinstance(exc, PayloadError):
        return "the upstream broke off its answer"
    return f"{type(exc).__name__}: {exc}"
