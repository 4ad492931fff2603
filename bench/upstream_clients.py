"""Which async HTTP client carries glmserve's upstream hot path: httpx, aiohttp, or glmserve's own
httptools client (``glmserve.engines.upstream.connection``, which replaced aiohttp there)?

    .venv/bin/python bench/upstream_clients.py [--seconds 5] [--concurrency 1,16] [--chunks 32]

Each client streams the same SSE answer from the zero-delay fake upstream (a separate process),
over one pooled keep-alive client, and hand every received block to the same SSE splitter,
exactly as the upstream engine does. Reported: completed requests per second and per-request
latency p50/p99 (time to the end of the stream) at each concurrency, the client running alone on
its event loop (uvloop). Writes ``bench/results/upstream-clients-<date>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import uvloop
from processes import free_port, server_process

from glmserve.engines.upstream.connection import Connections

HERE = Path(__file__).resolve().parent
FAKE = HERE.parent / "tests" / "api" / "fake_upstream.py"
BODY = {
    "model": "ok",
    "messages": [{"role": "user", "content": "hello"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}


def count_events(buffer: bytearray, block: bytes) -> int:
    buffer += block
    events = buffer.count(b"\n\n")
    cut = buffer.rfind(b"\n\n")
    if cut >= 0:
        del buffer[: cut + 2]
    return events


async def via_httpx(url: str, concurrency: int) -> tuple[Callable[[], Awaitable[int]], Callable[[], Any]]:
    client = httpx.AsyncClient(
        timeout=30, limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    )

    async def one() -> int:
        buffer, events = bytearray(), 0
        async with client.stream("POST", url, json=BODY) as response:
            async for block in response.aiter_raw():
                events += count_events(buffer, block)
        return events

    return one, client.aclose


async def via_aiohttp(url: str, concurrency: int) -> tuple[Callable[[], Awaitable[int]], Callable[[], Any]]:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))

    async def one() -> int:
        buffer, events = bytearray(), 0
        async with session.post(url, json=BODY) as response:
            async for block in response.content.iter_any():
                events += count_events(buffer, block)
        return events

    return one, session.close


async def via_glmserve(url: str, concurrency: int) -> tuple[Callable[[], Awaitable[int]], Callable[[], Any]]:
    conns = Connections(concurrency, 5.0, retries=2)
    payload = orjson.dumps(BODY)
    headers = {"content-type": "application/json", "accept": "text/event-stream"}

    async def one() -> int:
        buffer, events = bytearray(), 0
        response = await conns.post(url, payload, headers)
        while block := await response.readany():
            events += count_events(buffer, block)
        response.release()
        return events

    return one, conns.close


async def measure(make: Any, url: str, concurrency: int, seconds: float) -> dict[str, Any]:
    one, close = await make(url, concurrency)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            events = await one()
            assert events > 3, events
            latencies.append(time.perf_counter() - started)

    for _ in range(concurrency * 4):  # warm the pool
        await one()
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    await close()
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(cuts[49] * 1000, 3),
        "p99_ms": round(cuts[98] * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--chunks", type=int, default=32, help="content chunks per streamed answer")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per client")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = parser.parse_args()
    port = free_port()
    log = HERE.parent / "data" / "bench" / "logs" / "fake-upstream.log"
    cmd = [sys.executable, str(FAKE), "--port", str(port), "--chunks", str(args.chunks)]
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    results: dict[str, dict[str, list[dict[str, Any]]]] = {"httpx": {}, "aiohttp": {}, "glmserve": {}}
    clients = {"httpx": via_httpx, "aiohttp": via_aiohttp, "glmserve": via_glmserve}
    with server_process(cmd, env={}, health_url=f"http://127.0.0.1:{port}/v1/models", log_path=log):
        for level in (int(c) for c in args.concurrency.split(",")):
            for _ in range(args.rounds):
                for name, make in clients.items():
                    row = uvloop.run(measure(make, url, level, args.seconds))
                    results[name].setdefault(str(level), []).append(row)
                    print(f"{name:8} c={level:<3} {row}", flush=True)
    best = {
        name: {level: max(rows, key=lambda r: r["rps"]) for level, rows in by_level.items()}
        for name, by_level in results.items()
    }
    print(f"\n{'client':8} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, by_level in best.items():
        for level, row in by_level.items():
            print(f"{name:8} {level:>4} {row['rps']:>9} {row['p50_ms']:>8} {row['p99_ms']:>8}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"upstream-clients-{dt.date.today().isoformat()}.json"
    meta = {
        "chunks": args.chunks,
        "seconds": args.seconds,
        "httpx": httpx.__version__,
        "aiohttp": aiohttp.__version__,
        "glmserve": "glmserve.engines.upstream.connection (httptools)",
    }
    out.write_text(json.dumps({"meta": meta, "best": best, "runs": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
