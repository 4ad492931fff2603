"""The gateway hot path: what glmserve adds to every request, on the path users take — a stored
key, limits and a token budget active, every usage row committed — against the same upstream
called directly and LiteLLM's proxy in front of it.

    .venv/bin/python bench/hot_path.py [--passes 3] [--seconds 8] [--only NAMES] [--tag NAME]

Needs ``wrk`` (``apt-get install wrk``) and, for the PostgreSQL contenders, the database at
``--postgres`` (default ``postgresql://postgres@127.0.0.1:5432/test``; each run gets a fresh schema).

The upstream is the zero-delay fake (``tests/api/fake_upstream.py``, its own process). The
contenders, each its own process with one worker, one after another, in ``--passes`` passes
whose order alternates:

- ``direct``: the fake itself;
- ``glmserve-static``: glmserve with the static ``GLMSERVE_API_KEY`` (no key lookup, no limits);
- ``glmserve-sqlite`` / ``glmserve-postgres``: glmserve with a stored key that has RPM, TPM and
  concurrency limits and a monthly token budget (so every request takes a lease and a budget
  hold and commits a usage row), on SQLite (WAL) or PostgreSQL;
- ``glmserve-sqlite-nobudget`` / ``glmserve-postgres-nobudget`` (only with ``--only``): the same
  key without its token budget, so no budget hold per request;
- ``litellm``: LiteLLM's proxy with its master key, no database;
- ``litellm-postgres``: LiteLLM with a virtual key on PostgreSQL, its production mode. Its Prisma
  client fetches engine binaries at start, which may be unreachable here: then it fails to
  start, the reason is printed and recorded, and the no-database figure stands.

Each pass measures, with wrk: non-streamed requests on 1 connection (latency p50) and on 16
(requests/s, errors), and 200 concurrent streams of 10 chunks 50 ms apart (streams/s). The
targets (``TARGETS``) are fixed here, before the run: the statistic is the median over passes of
each pass's figure (the added p50 is taken within a pass, glmserve's p50 minus direct's), the
spread is the per-pass range, and a request that fails fails its target. A stored-key contender
must also have written one usage row per answered request. The 1-minute load average above 0.5
per CPU at the start makes the run INVALID. Results: ``bench/results/hot-path-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import litellm_proxy
import targets
import wrk_load
from hot_path_contenders import Endpoint, started
from processes import StartFailed, free_port, server_process

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FAKE = ROOT / "tests" / "api" / "fake_upstream.py"
NAMES = ("direct", "glmserve-static", "glmserve-sqlite", "glmserve-postgres", "litellm", "litellm-postgres")
# Opt-in (--only): the same stored key without its token budget (no budget hold per request).
EXTRA = ("glmserve-sqlite-nobudget", "glmserve-postgres-nobudget")
MESSAGES = [{"role": "user", "content": "Say hello in ten words."}]
# (mode, connections, stream, model kind)
RUNS = (("c1", 1, False, "ok"), ("c16", 16, False, "ok"), ("streams200", 200, True, "paced"))


@dataclass(frozen=True)
class Target:
    name: str
    contenders: tuple[str, ...]
    figure: str  # added_p50_ms | rps_c16 | stream_ratio
    bound: float
    higher_is_better: bool

    def describe(self) -> str:
        op = ">=" if self.higher_is_better else "<="
        return f"{self.name}: {self.figure} {op} {self.bound} [median over passes]"


STORED = ("glmserve-sqlite", "glmserve-postgres", *EXTRA)
TARGETS = (
    Target("c=1: latency added to the direct call, p50 (ms)", STORED, "added_p50_ms", 1.0, False),
    Target("c=16: non-streamed requests/s, 0 errors", STORED, "rps_c16", 1500.0, True),
    Target("200 streams: streams/s / direct's", STORED, "stream_ratio", 0.9, True),
)


def check(endpoint: Endpoint) -> None:
    """One request of each kind answers in full before the load starts."""
    for kind, stream in (("ok", False), ("paced", True)):
        body = {"model": endpoint.models[kind], "messages": MESSAGES, "stream": stream}
        reply = httpx.post(endpoint.url, json=body, headers=endpoint.headers, timeout=30)
        if reply.status_code != 200 or (stream and "data: [DONE]" not in reply.text):
            raise StartFailed(f"{kind} answered {reply.status_code}: {reply.text[:300]}")


def measure(endpoint: Endpoint, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    before = endpoint.rows() if endpoint.rows else None
    for mode, connections, stream, kind in RUNS:
        body = {"model": endpoint.models[kind], "messages": MESSAGES, "stream": stream}
        wrk_load.run(endpoint.url, body, endpoint.headers, connections, args.warmup)
        out[mode] = wrk_load.run(endpoint.url, body, endpoint.headers, connections, args.seconds).summary()
        out[mode + "_warmup_s"] = args.warmup
    if endpoint.rows:
        time.sleep(1.0)  # rows of the requests wrk cut at its deadline settle in the background
        out["usage_rows"] = endpoint.rows() - (before or 0)
    return out


def one_pass(n: int, args: argparse.Namespace, upstream: str, runs: dict[str, list[Any]],
             failed: dict[str, str]) -> None:  # fmt: skip
    order = args.names if n % 2 == 0 else args.names[::-1]
    print(f"pass {n + 1}/{args.passes}: {', '.join(order)}", flush=True)
    for name in order:
        try:
            with started(name, args, upstream) as endpoint:
                check(endpoint)
                figures = measure(endpoint, args)
        except (StartFailed, OSError, subprocess.SubprocessError, httpx.HTTPError, RuntimeError) as exc:
            failed.setdefault(name, f"{type(exc).__name__}: {str(exc)[:400]}")
            print(f"  {name}: FAILED {failed[name][:200]}", flush=True)
            runs.setdefault(name, []).append(None)
            continue
        runs.setdefault(name, []).append(figures)
        c1, c16, s = figures["c1"], figures["c16"], figures["streams200"]
        rows = f" | usage rows {figures['usage_rows']}" if "usage_rows" in figures else ""
        line = (f"  {name:18} c1 p50 {c1['p50_ms']} ms ({c1['rps']} req/s) | c16 {c16['rps']} req/s, "
                f"{c16['errors']} err | 200 streams {s['rps']}/s, {s['errors']} err{rows}")  # fmt: skip
        print(line, flush=True)


def per_pass(runs: dict[str, list[Any]], name: str, figure: str) -> list[float | None]:
    """The figure of ``name`` in each pass (None where a pass failed or had errors)."""
    values: list[float | None] = []
    for n, mine in enumerate(runs.get(name, [])):
        direct = runs.get("direct", [None] * (n + 1))[n]
        if mine is None or direct is None:
            values.append(None)
        elif figure == "added_p50_ms":
            values.append(round(mine["c1"]["p50_ms"] - direct["c1"]["p50_ms"], 3))
        elif figure == "rps_c16":
            values.append(None if mine["c16"]["errors"] else mine["c16"]["rps"])
        else:
            ok = mine["streams200"]["errors"] == 0 and direct["streams200"]["rps"]
            values.append(round(mine["streams200"]["rps"] / direct["streams200"]["rps"], 3) if ok else None)
    return values


def judge(runs: dict[str, list[Any]], args: argparse.Namespace, invalid: bool) -> list[dict[str, Any]]:
    verdicts = []
    for target in TARGETS:
        for name in target.contenders:
            if name not in args.names:
                continue
            values = per_pass(runs, name, target.figure)
            rows_ok = all(
                p is None or p.get("usage_rows", 0) >= sum(p[m]["requests"] for m, *_ in RUNS)
                for p in runs.get(name, [])
            )
            if any(v is None for v in values) or len(values) < args.passes:
                result, value = "FAIL", None
            else:
                value = statistics.median(v for v in values if v is not None)
                ok = value >= target.bound if target.higher_is_better else value <= target.bound
                result = "PASS" if ok and rows_ok else "FAIL"
            if invalid:
                result = "INVALID"
            verdicts.append({
                "target": target.describe(), "contender": name, "value": value, "per_pass": values,
                "usage_rows_complete": rows_ok, "result": result,
            })  # fmt: skip
    return verdicts


def table(runs: dict[str, list[Any]]) -> list[str]:
    head = f"{'contender':18} {'c1 p50 ms':>12} {'c1 req/s':>10} {'c16 req/s':>12} {'streams/s':>10}"
    lines = [head, "-" * len(head)]
    for name, passes in runs.items():
        ok = [p for p in passes if p is not None]
        if not ok:
            lines.append(f"{name:18} failed")
            continue

        def med(mode: str, key: str, ok: list[Any] = ok) -> str:
            vals = [p[mode][key] for p in ok]
            spread = f" ({min(vals):.1f}-{max(vals):.1f})" if len(vals) > 1 else ""
            return f"{statistics.median(vals):.2f}{spread}"

        lines.append(f"{name:18} {med('c1', 'p50_ms'):>12} {med('c1', 'rps'):>10} "
                     f"{med('c16', 'rps'):>12} {med('streams200', 'rps'):>10}")  # fmt: skip
    return lines


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0, help="whole seconds (wrk)")
    parser.add_argument("--only", default=",".join(NAMES))
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    parser.add_argument("--tag")
    args = parser.parse_args()
    args.names = [n for n in NAMES + EXTRA if n in args.only.split(",")]
    if "direct" not in args.names:
        args.names.insert(0, "direct")
    args.data_dir = args.data_dir.resolve()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    return args


def main() -> None:
    args = parse_args()
    cpus, load = os.cpu_count() or 1, os.getloadavg()[0]
    invalid = targets.busy(load, cpus)
    print("Targets (fixed before the run; statistic in brackets):")
    for target in TARGETS:
        print(f"  {target.describe()} — for {', '.join(target.contenders)}")
    print(f"  rule: >= {args.passes} passes of {args.seconds} s per run, order alternating; any error fails")
    if invalid:
        print(f"INVALID RUN: 1-minute load {load:.2f} on {cpus} CPUs at the start", flush=True)
    port = free_port()
    upstream = f"http://127.0.0.1:{port}/v1"
    fake = [sys.executable, str(FAKE), "--port", str(port), "--chunks", "16"]
    runs: dict[str, list[Any]] = {}
    failed: dict[str, str] = {}
    log = args.data_dir / "logs" / "hot-fake-upstream.log"
    started_at = dt.datetime.now().isoformat(timespec="seconds")
    cpu_before = targets.cpu_times()
    with server_process(fake, env=dict(os.environ), health_url=f"{upstream}/models", log_path=log):
        for n in range(args.passes):
            one_pass(n, args, upstream, runs, failed)
    steal, stolen = targets.steal_since(cpu_before)
    invalid = invalid or stolen
    verdicts = judge(runs, args, invalid)
    print("\nMedian over passes (range):")
    print("\n".join(table(runs)))
    print("\nTargets:")
    for v in verdicts:
        print(f"  {v['result']:7} {v['contender']:18} {v['target']}: {v['value']} (per pass {v['per_pass']})")
    for name, why in failed.items():
        print(f"  {name} failed: {why[:300]}")
    document = {
        "meta": {
            "date": started_at, "machine": platform.platform(), "cpus": cpus,
            "loadavg_start": load, "loadavg_end": os.getloadavg()[0], "invalid": invalid,
            "steal_share": round(steal, 4),
            "passes": args.passes, "seconds": args.seconds, "warmup": args.warmup,
            "litellm": litellm_proxy.LITELLM, "wrk": wrk_load.WRK,
            "targets": [t.describe() for t in TARGETS],
        },
        "runs": runs, "failed": failed, "verdicts": verdicts,
    }  # fmt: skip
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"hot-path-{dt.date.today().isoformat()}" + (f"-{args.tag}" if args.tag else "")
    out = args.out_dir / f"{stem}.json"
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
