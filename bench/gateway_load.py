"""Closed-loop HTTP load for the gateway benchmark: ``concurrency`` workers for ``seconds``.

Each worker sends a chat request, reads the answer to its end (the JSON body, or the SSE stream
to ``[DONE]``), records the latency, and sends the next. A request counts as an error when the
status is not 200, the connection fails, a stream ends without ``[DONE]``, or glmserve answered
it from its response cache (``x-cache: HIT``); every response's ``x-cache`` header is counted.
Runs of several passes pool into one (``Run.pooled``): all latencies, all seconds, all errors.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

MIN_FOR_P99 = 100  # a p99 of fewer samples is one of the largest few values


@dataclass
class Run:
    concurrency: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_bytes: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    x_cache: Counter[str] = field(default_factory=Counter)

    @classmethod
    def pooled(cls, runs: list[Run]) -> Run:
        out = cls(runs[0].concurrency if runs else 0)
        for run in runs:
            out.seconds += run.seconds
            out.latencies += run.latencies
            out.first_bytes += run.first_bytes
            out.errors += run.errors
            out.error_samples += run.error_samples[: max(0, 3 - len(out.error_samples))]
            out.x_cache.update(run.x_cache)
        return out

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: int, values: list[float] | None = None) -> float | None:
        """``None`` without samples, and for a p99 from fewer than ``MIN_FOR_P99`` of them."""
        data = self.latencies if values is None else values
        if not data or (q >= 99 and len(data) < MIN_FOR_P99):
            return None
        if len(data) < 2:
            return data[0]
        return statistics.quantiles(data, n=100, method="inclusive")[q - 1]

    def summary(self) -> dict[str, Any]:
        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000, 3)

        return {
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 3),
            "requests": len(self.latencies),
            "errors": self.errors,
            "rps": round(self.rps, 1),
            "p50_ms": ms(self.percentile(50)),
            "p99_ms": ms(self.percentile(99)),
            "ttfb_p50_ms": ms(self.percentile(50, self.first_bytes)),
            "x_cache": dict(self.x_cache),
            "error_samples": self.error_samples[:3],
        }


async def _one(session: aiohttp.ClientSession, url: str, body: dict[str, Any], run: Run) -> None:
    started = time.perf_counter()
    try:
        async with session.post(url, json=body) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {(await response.text())[:200]}")
            x_cache = response.headers.get("x-cache") or "absent"
            run.x_cache[x_cache] += 1
            if x_cache.upper() == "HIT":
                raise RuntimeError("answered from glmserve's response cache (x-cache: HIT)")
            if not body.get("stream"):
                await response.read()
            else:
                tail, first = b"", None
                async for block in response.content.iter_any():
                    first = first or time.perf_counter()
                    tail = (tail + block)[-64:]
                if b"[DONE]" not in tail:
                    raise RuntimeError(f"stream ended without [DONE]: {tail!r}")
                run.first_bytes.append(first - started)
    except (aiohttp.ClientError, OSError, RuntimeError, TimeoutError) as exc:
        run.errors += 1
        if len(run.error_samples) < 3:
            run.error_samples.append(f"{type(exc).__name__}: {exc}"[:300])
        return
    run.latencies.append(time.perf_counter() - started)


async def load(
    url: str, body: dict[str, Any], headers: dict[str, str], concurrency: int, seconds: float
) -> Run:
    run = Run(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as session:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await _one(session, url, body, run)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        run.seconds = time.perf_counter() - began
    return run
