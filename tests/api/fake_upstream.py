"""A scriptable OpenAI-compatible upstream on 127.0.0.1, for fault injection and benchmarks.

Raw asyncio HTTP/1.1 (keep-alive, chunked SSE) so that faults are exact: a reset is a TCP RST, a
stall holds the socket open until the client closes it. The behaviour of ``POST
.../chat/completions`` comes from the request's ``model``: a scripted queue for that model (see
``script``) first, else its default (``set_default``), else the model name itself read as a
scenario: ``SCENARIO[:ARG...]`` from ``SCENARIOS``, optionally followed by ``-LABEL`` to tell
deployments apart (``ok-bal-a`` answers like ``ok``).

A name that is no scenario is refused, never guessed: ``script`` and ``set_default`` raise at
once, and a request for it gets a 500 naming it and is listed in ``unknown``, which makes
leaving the context manager fail (a gateway could otherwise hide the 500 behind a fallback).

Every request is recorded (headers, body, when it ended and how), and the server counts the
requests whose response is still unfinished (``busy``), so a test can check that the gateway
closed every upstream request it gave up on.

Run it alone for benchmarks: ``python tests/api/fake_upstream.py --port 9000``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import struct
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import orjson

# name[:arg[:arg]] -> what the response does
SCENARIOS = (
    "ok",  # a normal answer: SSE when stream is true, JSON otherwise
    "zhipu_ok",  # Zhipu style: role on every chunk, usage on the finish chunk, no `object`
    "vllm_reasoning",  # vLLM's `reasoning` delta field, then content
    "reset_before",  # TCP RST right after reading the request
    "reset_mid",  # headers and two chunks, then TCP RST
    "stall_before",  # never answers (until the client closes)
    "stall_mid",  # headers and two chunks, then silence
    "status",  # status:CODE[:RETRY_AFTER] with an OpenAI-style error body
    "zhipu_200_error",  # zhipu_200_error[:CODE]: HTTP 200 with {"error": {"code": CODE}}
    "sse_error",  # an SSE {"error": ...} event before any content
    "sse_error_mid",  # two chunks, then an `event: error` SSE event
    "cut",  # two chunks, then the stream ends cleanly without finish_reason or [DONE]
    "invalid_json",  # an SSE data line that is not JSON, before any content
    "invalid_json_mid",  # two chunks, then a data line that is not JSON
    "drip",  # drip:SECONDS between chunks (default 0.2), ten chunks
    "slow",  # slow:SECONDS before an `ok` answer
    "redirect",  # 307 to another URL
    "ignore_stream",  # a whole JSON completion even when asked to stream
    "flaky",  # flaky:P: a TCP RST before any response byte with probability P (default 0.2), else ok
    "paced",  # paced:CHUNKS:MS: an SSE answer of CHUNKS content chunks, MS milliseconds apart
)
# Control, for a fake run as its own process (benchmarks): POST /_control/default with
# {"model", "behaviour"} (null: as its name says); GET /_control/counts: chat requests per model.
KNOWN = frozenset(name.split(":")[0] for name in SCENARIOS)
Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
ANSWER = "Hello from the fake upstream, one word at a time."


@dataclass
class Record:
    """One request as the upstream saw it."""

    path: str
    method: str
    headers: dict[str, str]
    body: dict[str, Any]
    behaviour: str
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    outcome: str = "running"  # complete | client_closed | reset | stalled

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))


def scenario_of(behaviour: str) -> tuple[str, list[str]]:
    """``SCENARIO[:ARG...][-LABEL]`` as (scenario, args); ValueError when it names none."""
    name, *args = behaviour.split("-", 1)[0].split(":")
    if name not in KNOWN:
        raise ValueError(f"fake upstream: {behaviour!r} names no scenario; known: {', '.join(sorted(KNOWN))}")
    return name, args


class ClientClosed(Exception):
    """The client closed the connection while the upstream was answering."""


class FakeUpstream:
    GENERATE_PATH = "/chat/completions"  # POSTs here behave as their model says (a subclass may differ)

    def __init__(self, host: str = "127.0.0.1", port: int = 0, chunks: int = 8):
        self.host = host
        self.port = port
        self.chunks = chunks
        self.records: list[Record] = []
        self.counts: Counter[str] = Counter()  # chat requests per model, recorded or not
        self.connections = 0
        self._scripts: dict[str, deque[str]] = {}
        self._defaults: dict[str, str] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self.record_requests = True
        self.unhealthy: set[str] = set()  # GET .../health/<name> answers 503 for these names
        self.unknown: list[str] = []  # behaviours requested that name no scenario

    # -- control (thread-safe) -------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def script(self, model: str, behaviours: list[str]) -> None:
        """The next requests for ``model`` behave as listed, in order; then as before."""
        for behaviour in behaviours:
            scenario_of(behaviour)
        with self._lock:
            self._scripts.setdefault(model, deque()).extend(behaviours)

    def set_default(self, model: str, behaviour: str | None) -> None:
        """From now on ``model`` behaves as ``behaviour`` (None: as its name says)."""
        if behaviour is not None:
            scenario_of(behaviour)
        with self._lock:
            if behaviour is None:
                self._defaults.pop(model, None)
            else:
                self._defaults[model] = behaviour

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._defaults.clear()
            self.records.clear()

    def health_checks(self, name: str) -> int:
        with self._lock:
            return sum(1 for r in self.records if r.path.endswith(f"/health/{name}"))

    def requests_for(self, model: str) -> list[Record]:
        with self._lock:
            return [r for r in self.records if r.path.endswith(self.GENERATE_PATH) and r.model == model]

    @property
    def busy(self) -> int:
        with self._lock:
            return sum(1 for r in self.records if r.ended is None)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """True once no request is unfinished (every stalled one was closed by the client)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.busy == 0:
                return True
            time.sleep(0.02)
        return self.busy == 0

    def _behaviour(self, model: str) -> str:
        with self._lock:
            queue = self._scripts.get(model)
            if queue:
                return queue.popleft()
            return self._defaults.get(model, model)

    # -- lifecycle ---------------------------------------------------------------------------
    async def serve(self) -> None:
        self._server = await asyncio.start_server(self._connection, self.host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    def start(self) -> FakeUpstream:
        """Serve from a daemon thread with its own event loop; returns once listening."""
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.serve())
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-upstream", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake upstream did not start")
        return self

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self.unknown:
            raise AssertionError(f"requests for unknown fake-upstream scenarios: {sorted(set(self.unknown))}")

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    # -- HTTP --------------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, ClientClosed):
            pass
        finally:
            self.connections -= 1
            if not writer.is_closing():
                writer.close()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        raw = await reader.readexactly(length) if length else b""
        body = orjson.loads(raw) if raw else {}
        if path.startswith("/_control"):
            return await self._control(method, path, body, writer)
        if path.split("?")[0].endswith(self.GENERATE_PATH) and method == "POST":
            with self._lock:
                self.counts[str(body.get("model", ""))] += 1
            behaviour = self._behaviour(str(body.get("model", "")))
        else:
            behaviour = "models"
        record = Record(path, method, headers, body if isinstance(body, dict) else {}, behaviour)
        if self.record_requests:
            with self._lock:
                self.records.append(record)
        try:
            keep_alive = await self._respond(record, reader, writer)
        except (ConnectionError, ClientClosed):
            record.outcome = "client_closed"
            raise
        finally:
            if record.ended is None:
                record.ended = time.monotonic()
        if record.outcome == "running":
            record.outcome = "complete"
        return keep_alive

    async def _control(self, method: str, path: str, body: Any, writer: Writer) -> bool:
        if method == "POST" and path == "/_control/default" and isinstance(body, dict):
            self.set_default(str(body["model"]), body.get("behaviour"))
            return await _json(writer, 200, {"ok": True})
        if path == "/_control/counts":
            with self._lock:
                counts = dict(self.counts)
            return await _json(writer, 200, {"counts": counts})
        return await _json(writer, 404, {"error": {"message": "unknown control"}})

    async def _respond(self, rec: Record, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if rec.behaviour == "models":
            if "/health/" in rec.path and rec.path.rsplit("/", 1)[-1] in self.unhealthy:
                return await _json(writer, 503, {"error": {"message": "unhealthy"}})
            return await _json(writer, 200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        try:
            name, args = scenario_of(rec.behaviour)
        except ValueError as exc:
            with self._lock:
                self.unknown.append(rec.behaviour)
            return await _json(writer, 500, {"error": {"message": str(exc), "type": "fake_upstream_misuse"}})
        if name == "slow":
            await _sleep_or_closed(reader, float(args[0]) if args else 0.5, rec)
            name, args = "ok", []
        handler = getattr(self, f"_do_{name}")
        result: bool = await handler(rec, reader, writer, args)
        return result

    async def _do_ok(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        if not rec.body.get("stream"):
            return await _json(writer, 200, completion(rec.body, self.chunks))
        return await _sse(writer, stream_chunks(rec.body, self.chunks))

    async def _do_zhipu_ok(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        return await _sse(writer, stream_chunks(rec.body, self.chunks, zhipu=True))

    async def _do_vllm_reasoning(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        thinking = [_chunk({"reasoning": piece}) for piece in ("Let me ", "think.")]
        return await _sse(writer, thinking + stream_chunks(rec.body, self.chunks))

    async def _do_reset_before(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        _reset(writer, rec)
        return False

    async def _two_chunks(self, rec: Record, writer: asyncio.StreamWriter) -> None:
        await _sse_head(writer)
        for chunk in stream_chunks(rec.body, self.chunks)[:2]:
            await _chunked(writer, _event(chunk))

    async def _do_reset_mid(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        await self._two_chunks(rec, writer)
        await asyncio.sleep(0.05)
        _reset(writer, rec)
        return False

    async def _do_stall_before(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        rec.outcome = "stalled"
        await _until_closed(reader)
        rec.outcome = "client_closed"
        return False

    async def _do_stall_mid(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        await self._two_chunks(rec, writer)
        rec.outcome = "stalled"
        await _until_closed(reader)
        rec.outcome = "client_closed"
        return False

    async def _do_status(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        status = int(args[0]) if args else 500
        headers = {"retry-after": args[1]} if len(args) > 1 else {}
        kind = "rate_limit_error" if status == 429 else "server_error"
        error = {"error": {"message": f"fake upstream says {status}", "type": kind, "code": str(status)}}
        return await _json(writer, status, error, headers)

    async def _do_zhipu_200_error(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        code = args[0] if args else "1305"
        return await _json(writer, 200, {"error": {"code": code, "message": "当前API请求过多，请稍后重试。"}})

    async def _do_sse_error(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        await _sse_head(writer)
        await _chunked(writer, _event({"error": {"code": "1234", "message": "网络错误"}}))
        await _chunked(writer, b"")
        return True

    async def _do_sse_error_mid(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        await self._two_chunks(rec, writer)
        payload = orjson.dumps({"error": {"code": "500", "message": "inference failed"}})
        await _chunked(writer, b"event: error\ndata: " + payload + b"\n\n")
        await _chunked(writer, b"")
        return True

    async def _do_cut(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        await self._two_chunks(rec, writer)
        await _chunked(writer, b"")
        return True

    async def _do_invalid_json(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        await _sse_head(writer)
        await _chunked(writer, b'data: {"choices": [{"delta": {"content": "x"\n\n')
        await _chunked(writer, b"")
        return True

    async def _do_invalid_json_mid(
        self, rec: Record, reader: Reader, writer: Writer, args: list[str]
    ) -> bool:
        await self._two_chunks(rec, writer)
        await _chunked(writer, b"data: not json at all\n\n")
        await _chunked(writer, b"")
        return True

    async def _do_drip(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        interval = float(args[0]) if args else 0.2
        await _sse_head(writer)
        for chunk in stream_chunks(rec.body, 10):
            await _chunked(writer, _event(chunk))
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                await _sleep_or_closed(reader, interval, rec)
        await _chunked(writer, b"data: [DONE]\n\n")
        await _chunked(writer, b"")
        return True

    async def _do_flaky(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        if random.random() < (float(args[0]) if args else 0.2):
            _reset(writer, rec)
            return False
        return await self._do_ok(rec, reader, writer, [])

    async def _do_paced(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        count = int(args[0]) if args else 16
        interval = (float(args[1]) if len(args) > 1 else 20.0) / 1000
        await _sse_head(writer)
        chunks = stream_chunks(rec.body, count)
        for i, chunk in enumerate(chunks):
            await _chunked(writer, _event(chunk))
            if 0 < i <= count:
                await asyncio.sleep(interval)
        await _chunked(writer, b"data: [DONE]\n\n")
        await _chunked(writer, b"")
        return True

    async def _do_ignore_stream(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        return await _json(writer, 200, completion(rec.body, self.chunks))

    async def _do_redirect(self, rec: Record, reader: Reader, writer: Writer, args: list[str]) -> bool:
        location = f"http://{self.host}:{self.port}/elsewhere/chat/completions"
        return await _json(writer, 307, {"moved": True}, {"location": location})


# -- response bodies -------------------------------------------------------------------------
def _words(n: int) -> list[str]:
    words = ANSWER.split(" ")
    pieces = [w + " " for w in words[:-1]] + [words[-1]]
    return (pieces * (n // len(pieces) + 1))[:n] if n > len(pieces) else pieces[:n]


def _prompt_tokens(body: dict[str, Any]) -> int:
    return sum(len(str(m.get("content") or "").split()) for m in body.get("messages") or [])


def _usage(body: dict[str, Any], completion_tokens: int) -> dict[str, Any]:
    prompt = _prompt_tokens(body)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


def _tool_call(body: dict[str, Any]) -> tuple[str, str] | None:
    tools = body.get("tools") or []
    if not tools or body.get("tool_choice") == "none":
        return None
    return str(tools[0]["function"]["name"]), '{"city": "Beijing"}'


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {
        "id": "fake-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "fake",
        **extra,
        "choices": [choice],
    }


def stream_chunks(body: dict[str, Any], n: int, *, zhipu: bool = False) -> list[dict[str, Any]]:
    call = _tool_call(body)
    chunks: list[dict[str, Any]] = [_chunk({"role": "assistant", "content": ""})]
    if call is not None:
        name, args = call
        head = {
            "index": 0,
            "id": "call_fake_0",
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        chunks.append(_chunk({"tool_calls": [head]}))
        for part in (args[: len(args) // 2], args[len(args) // 2 :]):
            chunks.append(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}))
        pieces, finish = 3, "tool_calls"
    else:
        chunks += [_chunk({"content": piece}) for piece in _words(n)]
        pieces, finish = n, "stop"
    usage = _usage(body, pieces)
    if zhipu:
        for c in chunks:
            c.pop("object")
            c["choices"][0]["delta"]["role"] = "assistant"
        chunks.append(_chunk({"role": "assistant", "content": ""}, finish, usage=usage))
        chunks[-1].pop("object")
        return chunks
    chunks.append(_chunk({}, finish))
    options = body.get("stream_options") or {}
    if options.get("include_usage"):
        chunks.append(
            {
                "id": "fake-1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "fake",
                "choices": [],
                "usage": usage,
            }
        )
    return chunks


def completion(body: dict[str, Any], n: int) -> dict[str, Any]:
    call = _tool_call(body)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(_words(n))}
    finish = "stop"
    if call is not None:
        message = {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "call_fake_0", "type": "function", "function": {"name": call[0], "arguments": call[1]}}
            ],
        }
        finish = "tool_calls"
    return {
        "id": "fake-1",
        "object": "chat.completion",
        "created": 1,
        "model": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": _usage(body, n),
    }


# -- wire helpers ----------------------------------------------------------------------------
def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def _sse(writer: Writer, chunks: list[dict[str, Any]]) -> bool:
    """A whole SSE answer: the head, every chunk as an event, ``[DONE]``; the connection stays open."""
    await _sse_head(writer)
    for chunk in chunks:
        await _chunked(writer, _event(chunk))
    await _chunked(writer, b"data: [DONE]\n\n")
    await _chunked(writer, b"")
    return True


async def _json(writer: Writer, status: int, body: Any, headers: dict[str, str] | None = None) -> bool:
    data = orjson.dumps(body)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (
        f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n{extra}\r\n"
    )
    writer.write(head.encode() + data)
    await writer.drain()
    return True


async def _sse_head(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
    await writer.drain()


async def _chunked(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))
    await writer.drain()


def _reset(writer: asyncio.StreamWriter, rec: Record) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
    rec.outcome = "reset"


async def _until_closed(reader: asyncio.StreamReader) -> None:
    """Wait until the client closes its side (a keep-alive client sends nothing mid-response)."""
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass


async def _sleep_or_closed(reader: asyncio.StreamReader, seconds: float, rec: Record) -> None:
    """Sleep, but notice at once when the client goes away meanwhile."""
    closed = asyncio.ensure_future(_until_closed(reader))
    try:
        await asyncio.wait({closed}, timeout=seconds)
    finally:
        closed.cancel()
    if closed.done() and not closed.cancelled():
        rec.outcome = "client_closed"
        rec.ended = time.monotonic()
        raise ClientClosed


def main() -> None:
    parser = argparse.ArgumentParser(description="a fake OpenAI-compatible upstream on 127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--chunks", type=int, default=8, help="content chunks per answer")
    args = parser.parse_args()
    fake = FakeUpstream(port=args.port, chunks=args.chunks)
    fake.record_requests = False

    async def run() -> None:
        await fake.serve()
        print(f"listening on {fake.base_url}", flush=True)
        await asyncio.Event().wait()

    try:
        import uvloop
    except ImportError:
        asyncio.run(run())
    else:
        uvloop.run(run())


if __name__ == "__main__":
    main()
