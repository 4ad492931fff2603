"""glmserve's upstream HTTP client against real sockets: body framings, keep-alive and its limits,
closing mid-answer, TLS, and what it refuses to send."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gzip
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from glmserve.engines.upstream import http_pool
from glmserve.engines.upstream.connection import Connections
from glmserve.engines.upstream.http_client import ClientError, TlsFailed

LOOPBACK = ipaddress.ip_address("127.0.0.1")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


@dataclass
class Rig:
    conns: Connections
    url: str
    seen: list[int]  # connections the upstream accepted


@contextlib.asynccontextmanager
async def upstream(
    handler: Handler, *, limit: int = 8, retries: int = 0, tls: ssl.SSLContext | None = None
) -> AsyncIterator[Rig]:
    """A loopback upstream running ``handler`` per connection, and a client pool for it."""
    seen = [0]

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen[0] += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            await handler(reader, writer)
        writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0, ssl=tls)
    conns = Connections(limit, 1.0, retries=retries)
    scheme = "https" if tls else "http"
    try:
        yield Rig(conns, f"{scheme}://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/x", seen)
    finally:
        await conns.close()
        server.close()


def replying(*raws: bytes) -> Handler:
    """A handler that reads one request and sends the next of ``raws`` (the last one again)."""
    queue = list(raws)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(queue.pop(0) if len(queue) > 1 else queue[0])
        await writer.drain()

    return handler


def slow_answers(delay_s: float) -> Handler:
    """A handler that answers every request on its connection, each after ``delay_s``."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            await asyncio.sleep(delay_s)
            writer.write(answer(b"{}"))
            await writer.drain()

    return handler


def answer(body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n{head}\r\n".encode() + body


async def fetch(conns: Connections, url: str) -> tuple[int, bytes]:
    response = await conns.post(url, b'{"x": 1}', {"content-type": "application/json"})
    body = await response.read()
    response.release()
    return response.status, body


def test_every_body_framing_is_read_whole_and_keep_alive_reuses_the_connection() -> None:
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    zipped = gzip.compress(b"hello world")
    answers = [answer(b"hello world"), chunked, answer(zipped, "content-encoding: gzip")]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for raw in answers:
            request = await read_request(reader)
            assert request.endswith(b'{"x": 1}') and b"\r\nhost: 127.0.0.1:" in request
            writer.write(raw)
            await writer.drain()
        await read_request(reader)  # the last: no length, so the body runs to the close
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhello world")
        await writer.drain()

    async def run() -> None:
        async with upstream(handler) as rig:
            for _ in range(4):
                assert await fetch(rig.conns, rig.url) == (200, b"hello world")
        assert rig.seen[0] == 1

    asyncio.run(run())


def test_connection_close_and_idle_connections_the_upstream_closed_are_not_reused() -> None:
    async def run() -> None:
        # keep-alive by default, but the upstream closes each connection after its answer
        async with upstream(replying(answer(b"{}")), retries=2) as rig:
            for _ in range(3):
                assert await fetch(rig.conns, rig.url) == (200, b"{}")
                await asyncio.sleep(0.05)  # the close reaches the client while the connection idles
        assert rig.seen[0] == 3 and sum(rig.conns.retried.values()) == 0

    asyncio.run(run())


def test_the_pool_limit_holds_callers_until_a_connection_is_free() -> None:
    async def run() -> None:
        async with upstream(slow_answers(0.05), limit=1) as rig:
            results = await asyncio.gather(*(fetch(rig.conns, rig.url) for _ in range(4)))
        assert results == [(200, b"{}")] * 4 and rig.seen[0] == 1

    asyncio.run(run())


def test_closing_an_answer_midway_closes_its_connection_at_once() -> None:
    async def run() -> None:
        eof = asyncio.Event()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            if eof.is_set():
                writer.write(answer(b"{}"))
                await writer.drain()
                return
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\none\r\n")
            await writer.drain()
            assert await reader.read() == b""  # the client closed its side
            eof.set()

        async with upstream(handler) as rig:
            response = await rig.conns.post(rig.url, b"{}", {})
            assert await response.readany() == b"one"
            response.close()
            await asyncio.wait_for(eof.wait(), 2)
            assert await fetch(rig.conns, rig.url) == (200, b"{}")  # a new connection
        assert rig.seen[0] == 2

    asyncio.run(run())


def test_a_malformed_answer_and_a_broken_off_body_are_client_errors() -> None:
    broken = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello"

    async def run() -> None:
        async with upstream(replying(broken, b"HTXP/9 nonsense\r\n\r\n")) as rig:
            for _ in range(2):
                with pytest.raises(ClientError):
                    await fetch(rig.conns, rig.url)

    asyncio.run(run())


def test_a_header_value_with_a_line_break_is_refused() -> None:
    async def run() -> None:
        conns = Connections(8, 1.0, retries=0)
        with pytest.raises(ValueError, match="line break"):
            await conns.post("http://127.0.0.1:9/", b"", {"anthropic-beta": "x\r\nx-injected: 1"})
        await conns.close()

    asyncio.run(run())


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "glmserve test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(LOOPBACK)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def test_tls_upstreams_are_verified_against_the_trusted_certificates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_file, key_file = _certificate(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert_file, key_file)

    async def run(trusted: bool) -> None:
        monkeypatch.setattr(http_pool, "_TLS", None)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file if trusted else tmp_path / "none.pem"))
        async with upstream(replying(answer(b"secure")), retries=2, tls=server_tls) as rig:
            if trusted:
                assert await fetch(rig.conns, rig.url) == (200, b"secure")
            else:
                with pytest.raises(TlsFailed):
                    await fetch(rig.conns, rig.url)
                assert sum(rig.conns.retried.values()) == 0

    asyncio.run(run(trusted=True))
    asyncio.run(run(trusted=False))


def test_an_answer_broken_off_inside_its_head_is_not_resent() -> None:
    async def run() -> None:
        # the upstream began to answer, so it did the work
        async with upstream(replying(b"HTTP/1.1 200 OK\r\ncontent-"), retries=2) as rig:
            with pytest.raises(ClientError, match="broke off"):
                await fetch(rig.conns, rig.url)
        assert rig.seen[0] == 1 and sum(rig.conns.retried.values()) == 0

    asyncio.run(run())


def test_a_caller_that_gives_up_waiting_for_a_connection_leaves_the_pool_usable() -> None:
    async def run() -> None:
        async with upstream(slow_answers(0.1), limit=1) as rig:
            holder = asyncio.create_task(fetch(rig.conns, rig.url))
            await asyncio.sleep(0.02)
            with pytest.raises(TimeoutError):  # waits for the one connection, gives up
                await asyncio.wait_for(fetch(rig.conns, rig.url), 0.03)
            assert await asyncio.wait_for(fetch(rig.conns, rig.url), 2) == (200, b"{}")
            assert await holder == (200, b"{}")
        assert rig.seen[0] == 1

    asyncio.run(run())


def test_a_pooled_connection_found_closing_at_send_is_resent_as_stale() -> None:
    async def run() -> None:
        async with upstream(slow_answers(0), retries=2) as rig:
            assert await fetch(rig.conns, rig.url) == (200, b"{}")
            (pool,) = rig.conns._pools.values()
            pool.idle[-1].transport.close()  # closing; its connection_lost comes on a later turn
            assert await fetch(rig.conns, rig.url) == (200, b"{}")
        assert rig.conns.retried["stale"] == 1 and rig.seen[0] == 2

    asyncio.run(run())
