"""Gateway overhead: glmserve in front of a zero-delay fake upstream, against calling the same
upstream directly, and against LiteLLM's proxy in front of it.

    .venv/bin/python bench/gateway.py [--passes 2] [--seconds 8] [--concurrency 8] [--levels 4,16,64]
        [--quick] [--tag NAME]

The fake upstream (``tests/api/fake_upstream.py``, its own process) answers at once: a JSON
completion, or an SSE stream of ``--chunks`` content chunks. The three contenders
(``gateway_contenders``) run one after another, each in its own process (one worker each),
behind the same closed-loop load generator (aiohttp, this process), in ``--passes`` passes
whose order alternates (direct, glmserve, LiteLLM; then LiteLLM, glmserve, direct). For
streamed and non-streamed requests it measures:

- latency p50/p99 at ``--concurrency`` and the latency each gateway adds to the direct call;
- the highest request rate reached with zero errors over ``--levels`` of concurrency.

The targets are fixed in ``targets.GATEWAY_TARGETS`` and printed first; ``gateway_report``
judges them on the figures pooled over all passes and prints the per-pass quotients beside.
LiteLLM (``litellm[proxy]``, pinned in ``litellm_proxy.py``) is installed on first use into a
virtualenv of its own under ``data/bench``. Results go to ``bench/results/gateway-<date>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import gateway_load
import gateway_report
import litellm_proxy
import targets
import uvloop
from gateway_contenders import NAMES, Target, started
from processes import StartFailed, free_port, server_process

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FAKE = ROOT / "tests" / "api" / "fake_upstream.py"
MESSAGES = [{"role": "user", "content": "Say hello in ten words."}]
MODES = (("non_stream", False), ("stream", True))


def measure(target: Target, stream: bool, args: argparse.Namespace) -> dict[str, Any]:
    """One pass of one mode: a warm-up, the latency run, and the ramp over ``--levels``."""
    body: dict[str, Any] = {"model": target.model, "messages": MESSAGES, "stream": stream}

    def run(concurrency: int, seconds: float) -> gateway_load.Run:
        return uvloop.run(gateway_load.load(target.url, body, target.headers, concurrency, seconds))

    run(args.concurrency, args.warmup)
    return {
        "latency": run(args.concurrency, args.seconds),
        "ramp": [run(level, args.level_seconds) for level in args.levels],
    }


def one_pass(
    n: int, args: argparse.Namespace, upstream: str, runs: gateway_report.Runs, failed: dict[str, str]
) -> list[str]:
    """Pass ``n``: each contender in turn, the order reversed every other pass; a contender that
    fails gets ``None`` for this pass (and each mode the failure cut short). Returns the order."""
    order = args.names if n % 2 == 0 else args.names[::-1]
    print(f"pass {n + 1}/{args.passes}: {', '.join(order)}", flush=True)
    for name in order:
        by_mode = runs.setdefault(name, {m: [] for m, _ in MODES})
        try:
            with started(name, args, upstream) as target:
                for mode, stream in MODES:
                    by_mode[mode].append(measure(target, stream, args))
                    lat = by_mode[mode][-1]["latency"].summary()
                    print(f"  {name:10} {mode:10} p50 {lat['p50_ms']} ms, {lat['requests']} requests, "
                          f"{lat['errors']} errors", flush=True)  # fmt: skip
        except (StartFailed, OSError, subprocess.SubprocessError) as exc:
            failed.setdefault(name, f"{type(exc).__name__}: {str(exc)[:300]}")
            print(f"  {name}: {failed[name]}", flush=True)
        for mode, _ in MODES:
            if len(by_mode[mode]) < n + 1:
                by_mode[mode].append(None)
    return order


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--passes", type=int, help="passes, order alternating [2; quick 1]")
    parser.add_argument("--seconds", type=float, default=8.0, help="latency run per contender, mode and pass")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrency of the latency run")
    parser.add_argument("--levels", default="4,16,64", help="concurrency levels for the request-rate ramp")
    parser.add_argument("--level-seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--chunks", type=int, default=16, help="content chunks per streamed answer")
    parser.add_argument("--only", default=",".join(NAMES))
    parser.add_argument("--quick", action="store_true", help="short runs, 1 pass (smoke test)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    parser.add_argument("--tag", help="results file name gateway-<date>-<tag>.json (a partial run)")
    args = parser.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    if args.quick:
        args.seconds, args.level_seconds, args.warmup = 2.0, 1.5, 0.5
    args.passes = args.passes or (1 if args.quick else targets.MIN_PASSES)
    args.names = [n for n in NAMES if n in args.only.split(",")]
    args.data_dir = args.data_dir.resolve()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    return args


def meta(args: argparse.Namespace) -> dict[str, Any]:
    cpus, load_1min = os.cpu_count() or 1, os.getloadavg()[0]
    invalid = (
        f"1-minute load average {load_1min:.2f} on {cpus} CPUs at the start "
        f"(limit {targets.MAX_LOAD_PER_CPU * cpus:.2f}): another process was using the machine"
        if targets.busy(load_1min, cpus)
        else None
    )
    keep = ("passes", "seconds", "concurrency", "levels", "level_seconds", "warmup", "chunks", "names")
    return {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "cpus": cpus,
        "loadavg_start": os.getloadavg(),
        "invalid_reason": invalid,
        "litellm": litellm_proxy.LITELLM,
        "targets": [dataclasses.asdict(t) for t in targets.GATEWAY_TARGETS],
        "rules": targets.rules(),
        **{k: v for k, v in vars(args).items() if k in keep},
    }


def per_pass_records(runs: gateway_report.Runs) -> dict[str, Any]:
    return {
        name: {
            mode: [None if p is None else {"latency": p["latency"].summary(),
                                           "ramp": [r.summary() for r in p["ramp"]]} for p in passes]
            for mode, passes in by_mode.items()
        }
        for name, by_mode in runs.items()
    }  # fmt: skip


def main() -> None:
    args = parse_args()
    info = meta(args)
    print("\n".join(targets.gateway_lines()))
    if info["invalid_reason"]:
        print(f"INVALID RUN: {info['invalid_reason']}; every verdict will read INVALID", flush=True)
    upstream_port = free_port()
    upstream = f"http://127.0.0.1:{upstream_port}/v1"
    fake = [sys.executable, str(FAKE), "--port", str(upstream_port), "--chunks", str(args.chunks)]
    runs: gateway_report.Runs = {}
    failed: dict[str, str] = {}
    log = args.data_dir / "logs" / "fake-upstream.log"
    with server_process(fake, env=dict(os.environ), health_url=f"{upstream}/models", log_path=log):
        info["orders"] = [one_pass(n, args, upstream, runs, failed) for n in range(args.passes)]
    info["loadavg_end"] = os.getloadavg()
    pooled = gateway_report.pooled_summary(runs)
    verdicts = gateway_report.judge_all(runs, args.passes, failed, info["invalid_reason"] is not None)
    print(f"\nPooled over passes (latency run at concurrency {args.concurrency})")
    print("\n".join(gateway_report.table(pooled)))
    print("\nTargets (verdict on the pooled figures; the per-pass quotients are the spread)")
    print("\n".join(v.line() for v in verdicts))
    passed = sum(v.result == "PASS" for v in verdicts)
    status = "RUN INVALID" if info["invalid_reason"] else "RUN VALID"
    print(f"\n{status}: {passed} PASS, {len(verdicts) - passed} FAIL of {len(verdicts)} targets")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"gateway-{dt.date.today().isoformat()}" + (f"-{args.tag}" if args.tag else "")
    out = args.out_dir / f"{stem}.json"
    document = {
        "meta": info,
        "failed": failed,
        "pooled": pooled,
        "per_pass": per_pass_records(runs),
        "verdicts": [v.record() for v in verdicts],
    }
    out.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
