"""``GET /livez``: answered by the event loop itself, ahead of every other layer.

A liveness probe asks one question: is this process's event loop still turning? ``FrontDoor``
answers it before routing, request ids, access logging or anything that could wait on an
engine, the database or Redis, with a body built once at start-up. Its latency is therefore the
event loop's own lag, which is what a probe with a one-second timeout must be able to rely on
while hundreds of streams run (``bench/reliability.py`` measures its p99 under load).
Readiness — are the models and the database usable — is ``/readyz``.
"""

from __future__ import annotations

from starlette.types import Scope, Send

PATH = "/livez"
_BODY = b'{"status":"alive"}'
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_BODY)).encode()),
        (b"cache-control", b"no-store"),
    ],
}


async def answer(scope: Scope, send: Send) -> None:
    """The answer to ``GET`` (or ``HEAD``) ``/livez``."""
    await send(_START)
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else _BODY})
