"""Closed-loop streaming load for the reliability suite, and a liveness prober of its own.

``run_load`` keeps ``concurrency`` workers busy for ``seconds``: each sends a streamed chat
request with a unique ``request_id``, reads it to ``[DONE]`` and sends the next. Every request
is kept as a ``Outcome`` (when it started and ended, its cause), so a fault scenario can ask
what happened before, during and after the fault. Causes: ``ok``; ``http_<status>``;
``error_event`` (an in-band error after the answer began); ``incomplete`` (the stream ended
without ``[DONE]``); ``transport:<error>`` (the connection failed); ``timeout``.

``probe`` (run as its own process: ``python -m tests.api.load_gen probe URL SECONDS OUT``) GETs a
URL on a fresh connection every 50 ms, like a liveness probe, and writes the latencies as JSON.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import secrets
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp


@dataclass(frozen=True, slots=True)
class Outcome:
    request_id: str
    started: float  # time.monotonic()
    ended: float
    cause: str
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return self.cause == "ok"

    @property
    def latency(self) -> float:
        return self.ended - self.started


@dataclass
class LoadResult:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def between(self, start: float, end: float) -> list[Outcome]:
        """Requests that started in ``[start, end)``."""
        return [o for o in self.outcomes if start <= o.started < end]

    @property
    def completed(self) -> set[str]:
        return {o.request_id for o in self.outcomes if o.ok}

    def summary(self, outcomes: list[Outcome] | None = None) -> dict[str, Any]:
        chosen = self.outcomes if outcomes is None else outcomes
        latencies = sorted(o.latency for o in chosen if o.ok)
        causes = Counter(o.cause for o in chosen if not o.ok)
        return {
            "requests": len(chosen),
            "completed": len(latencies),
            "failed": dict(causes),
            "success": round(len(latencies) / len(chosen), 5) if chosen else None,
            "p50_ms": percentile_ms(latencies, 50),
            "p99_ms": percentile_ms(latencies, 99),
            "rps": round(len(latencies) / self.seconds, 1) if self.seconds else None,
        }


def percentile_ms(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0] * 1000, 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000, 2)


async def one(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], body: dict[str, Any], timeout_s: float
) -> Outcome:
    request_id = f"rel-{secrets.token_hex(8)}"
    started = time.monotonic()
    cause, retry_after = "incomplete", None
    try:
        async with asyncio.timeout(timeout_s):
            async with http.post(url, json=body | {"request_id": request_id}, headers=headers) as response:
                if response.status != 200:
                    retry_after = response.headers.get("retry-after")
                    await response.read()
                    cause = f"http_{response.status}"
                else:
                    async for line in response.content:
                        if line.startswith(b"data: [DONE]"):
                            cause = "ok"
                        elif line.startswith(b'data: {"error"'):
                            cause = "error_event"
    except TimeoutError:
        cause = "timeout"
    except (aiohttp.ClientError, OSError) as exc:
        cause = f"transport:{type(exc).__name__}"
    return Outcome(request_id, started, time.monotonic(), cause, retry_after)


async def run_load(
    url: str,
    headers: dict[str, str],
    body: dict[str, Any],
    concurrency: int,
    seconds: float,
    *,
    timeout_s: float = 60.0,
    result: LoadResult | None = None,
) -> LoadResult:
    """``concurrency`` closed-loop workers for ``seconds``; ``result`` fills as it runs."""
    result = result if result is not None else LoadResult()
    connector = aiohttp.TCPConnector(limit=concurrency + 8, force_close=False)
    started = time.monotonic()
    deadline = started + seconds
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as http:

        async def worker() -> None:
            while time.monotonic() < deadline:
                outcome = await one(http, url, headers, {**body, "stream": True}, timeout_s)
                result.outcomes.append(outcome)
                if not outcome.ok and outcome.cause.startswith(("transport", "http_5", "http_429")):
                    await asyncio.sleep(0.05)  # a client that backs off a little, not a spinning one

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.monotonic() - started
    return result


def probe(url: str, seconds: float, interval_s: float = 0.05) -> dict[str, Any]:
    """GET ``url`` on a fresh connection every ``interval_s``; latencies of 200s, and failures."""
    parts = urlsplit(url)
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        begun = time.perf_counter()
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
            conn.request("GET", parts.path)
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status == 200:
                latencies.append(time.perf_counter() - begun)
            else:
                failures += 1
        except OSError:
            failures += 1
        time.sleep(max(0.0, interval_s - (time.perf_counter() - begun)))
    ordered = sorted(latencies)
    return {
        "probes": len(latencies) + failures,
        "failures": failures,
        "p50_ms": percentile_ms(ordered, 50),
        "p99_ms": percentile_ms(ordered, 99),
        "max_ms": round(ordered[-1] * 1000, 2) if ordered else None,
    }


def main(argv: list[str]) -> None:
    if len(argv) == 4 and argv[0] == "probe":
        url, seconds, out = argv[1], float(argv[2]), argv[3]
        with open(out, "w", encoding="utf-8") as handle:
            json.dump(probe(url, seconds), handle)
        return
    raise SystemExit("usage: python -m tests.api.load_gen probe URL SECONDS OUT")


if __name__ == "__main__":
    main(sys.argv[1:])
