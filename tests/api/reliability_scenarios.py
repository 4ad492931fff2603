"""The reliability scenarios: each applies load, injects one fault, and returns its figures with
the target it must meet (``Verdict``). ``bench/reliability.py`` runs them at full size and
prints the table; ``tests/api/test_reliability_*.py`` run them at CI size and assert.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

from .load_gen import LoadResult, percentile_ms, run_load
from .reliability_rig import (
    FAST,
    PACE,
    STALL_FIRST_BYTE,
    FakeProcess,
    auth,
    body,
    chat_url,
    livez_port_url,
    metric,
)
from .server_process import GlmServe

ROOT = Path(__file__).resolve().parents[2]
STALL_ROUNDS = 3  # the first try and the retry policy's 2 rounds


@dataclass
class Verdict:
    name: str
    target: str
    passed: bool
    figures: dict[str, Any] = field(default_factory=dict)


def load(
    url: str,
    headers: dict[str, str],
    req: dict[str, Any],
    concurrency: int,
    seconds: float,
    timeout_s: float = 60,
) -> LoadResult:
    return uvloop.run(run_load(url, headers, req, concurrency, seconds, timeout_s=timeout_s))


def load_with(
    url: str,
    headers: dict[str, str],
    req: dict[str, Any],
    concurrency: int,
    seconds: float,
    events: list[tuple[float, Callable[[], None]]],
) -> tuple[LoadResult, dict[str, float]]:
    """Load while ``events`` (seconds after the start, action) run in a thread; returns when each ran."""
    result = LoadResult()
    ran: dict[str, float] = {}
    start = time.monotonic()

    def script() -> None:
        for at, action in events:
            time.sleep(max(0.0, start + at - time.monotonic()))
            action()
            ran[getattr(action, "__name__", str(at))] = time.monotonic()

    thread = threading.Thread(target=script, daemon=True)
    thread.start()
    uvloop.run(run_load(url, headers, req, concurrency, seconds, result=result))
    thread.join(120)
    return result, ran


def probe_process(url: str, seconds: float) -> tuple[subprocess.Popen[bytes], Path]:
    """The liveness prober in a process of its own (its timing is not the load generator's)."""
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    cmd = [sys.executable, "-m", "tests.api.load_gen", "probe", url, str(seconds), str(out)]
    return subprocess.Popen(cmd, cwd=ROOT), out


def held_load(server: GlmServe, fake: FakeProcess, concurrency: int, seconds: float) -> Verdict:
    """Streams through the gateway vs the fake upstream, ``/livez`` probed meanwhile; then the
    same generator against the upstream directly (is the generator the bottleneck?)."""
    # The liveness port's /livez (a thread) is the target; the main port's (the event loop's lag) is shown.
    prober, out = probe_process(livez_port_url(server), seconds)
    loop_prober, loop_out = probe_process(f"{server.root}/livez", seconds)
    through = load(chat_url(server), auth(server.api_key), body("rel"), concurrency, seconds)
    prober.wait(seconds + 60)
    loop_prober.wait(seconds + 60)
    livez, loop_livez = json.loads(out.read_text()), json.loads(loop_out.read_text())
    direct = load(f"{fake.base_url}/chat/completions", {}, body(PACE), concurrency, seconds)
    gw, dr = through.summary(), direct.summary()
    passed = (
        gw["success"] == 1.0
        and livez["failures"] == 0
        and (livez["p99_ms"] or 1e9) < 50
        and (dr["rps"] or 0) >= (gw["rps"] or 0)
    )
    target = (
        "every stream completes; /livez on the liveness port p99 < 50 ms; "
        "direct rps ≥ gateway rps (generator keeps up)"
    )
    figures = {
        "concurrency": concurrency, "seconds": seconds, "gateway": gw, "direct": dr, "livez": livez,
        "livez_main_port": loop_livez,
    }  # fmt: skip
    return Verdict("load held: gateway", target, passed, figures)


def embedded_load(server: GlmServe, concurrency: int, seconds: float) -> Verdict:
    req = {
        "model": "glm-4.5-flash",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 8,
        "thinking": {"type": "disabled"},
    }
    # The streams queue for the engine's slots: one may wait for many others to finish.
    result = load(chat_url(server), auth(server.api_key), req, concurrency, seconds, timeout_s=300)
    s = result.summary()
    passed = s["success"] == 1.0
    return Verdict(
        "load held: embedded",
        "every stream completes (none refused)",
        passed,
        {"concurrency": concurrency} | s,
    )


def resets(server: GlmServe, concurrency: int, seconds: float) -> Verdict:
    before = metric(server, "glmserve_upstream_connection_retries_total")
    ejected = metric(server, "glmserve_deployment_ejections_total")
    result = load(chat_url(server), auth(server.api_key), body("rel-flaky"), concurrency, seconds)
    s = result.summary()
    s["connection_retries"] = metric(server, "glmserve_upstream_connection_retries_total") - before
    s["ejections"] = metric(server, "glmserve_deployment_ejections_total") - ejected
    return Verdict("fault: upstream resets 20%", "≥ 99% of requests succeed", (s["success"] or 0) >= 0.99, s)


def stall(server: GlmServe, fake: FakeProcess, concurrency: int, seconds: float) -> Verdict:
    """The upstream stops answering for a while (accepts, never responds), then recovers."""
    on, off = seconds * 0.15, seconds * 0.75  # longer than a stalled request's timeouts

    def stall_on() -> None:
        fake.control("stall-switch", "stall_before")

    def stall_off() -> None:
        fake.control("stall-switch", None)

    result, ran = load_with(
        chat_url(server), auth(server.api_key), body("rel-stall"), concurrency, seconds,
        [(on, stall_on), (off, stall_off)],
    )  # fmt: skip
    during = result.between(ran["stall_on"], ran["stall_off"])
    after = [o for o in result.outcomes if o.started >= ran["stall_off"] and o.ok]
    worst = max((o.latency for o in result.outcomes), default=0.0)
    recovered = min((o.ended for o in after), default=float("inf")) - ran["stall_off"]
    figures = {
        "during": result.summary(during),
        "slowest_ms": round(worst * 1000, 1),
        "first_success_after_s": round(recovered, 2),
        "503_with_retry_after": all(o.retry_after for o in during if o.cause == "http_503"),
    }
    bound = STALL_ROUNDS * (FAST["connect"] + STALL_FIRST_BYTE) + 2.0
    passed = worst < bound and bool(figures["503_with_retry_after"])
    target = f"nothing hangs: slowest < {bound:g} s (3 tries × (connect + first_byte) + 2 s)"
    target += "; 503s carry Retry-After"
    return Verdict("fault: upstream stalls", target, passed, figures)


def restart(server: GlmServe, fake: FakeProcess, concurrency: int, seconds: float) -> Verdict:
    """The upstream is killed (SIGKILL) mid-load and started again on the same port."""
    marks: dict[str, float] = {}

    def kill() -> None:
        fake.kill()

    def start() -> None:
        marks["listening"] = fake.start()

    result, ran = load_with(
        chat_url(server), auth(server.api_key), body("rel"), concurrency, seconds,
        [(seconds * 0.3, kill), (seconds * 0.6, start)],
    )  # fmt: skip
    down = [o for o in result.outcomes if ran["kill"] + 1.0 <= o.started < marks["listening"]]
    refused = [o for o in down if not o.ok]
    first = min((o.ended for o in result.outcomes if o.ok and o.started >= marks["listening"]), default=1e9)
    figures = {
        "while_down": result.summary(down),
        "refusal_p99_ms": percentile_ms(sorted(o.latency for o in refused), 99),
        "refusals_with_retry_after": sum(1 for o in refused if o.retry_after),
        "first_success_after_restart_s": round(first - marks["listening"], 3),
    }
    passed = figures["first_success_after_restart_s"] <= 2.0 and all(o.retry_after for o in refused)
    target = "first success ≤ 2 s after the upstream listens again; refusals are fast 503s with Retry-After"
    return Verdict("fault: upstream killed + restarted", target, passed, figures)


def amplification(server: GlmServe, fake: FakeProcess, requests: int) -> Verdict:
    """Every upstream answer is 503: upstream attempts per client request, breaker on and off."""
    figures: dict[str, Any] = {}
    for model in ("amp-on", "amp-off"):
        fake.control(model, "status:503")
        before = fake.counts().get(model, 0)
        req = body(model)

        async def burst(model_body: dict[str, Any] = req) -> None:
            import aiohttp

            async with aiohttp.ClientSession() as http:
                sem = asyncio.Semaphore(16)

                async def one() -> None:
                    async with (
                        sem,
                        http.post(chat_url(server), json=model_body, headers=auth(server.api_key)) as r,
                    ):
                        await r.read()

                await asyncio.gather(*(one() for _ in range(requests)))

        uvloop.run(burst())
        sent = fake.counts().get(model, 0) - before
        figures[model] = {
            "client_requests": requests,
            "upstream_attempts": sent,
            "ratio": round(sent / requests, 3),
        }
    passed = all(f["ratio"] <= 1.2 for f in figures.values())
    return Verdict(
        "fault: full outage, retry amplification",
        "upstream attempts ≤ 1.2 × client requests",
        passed,
        figures,
    )
