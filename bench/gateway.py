"""Gateway overhead: glmserve in front of a zero-delay fake upstream, against calling the same
upstream directly, and against LiteLLM's proxy in front of it.

    .venv/bin/python bench/gateway.py [--seconds 8] [--concurrency 8] [--levels 4,16,64] [--quick]

The fake upstream (``tests/api/fake_upstream.py``, its own process) answers at once: a JSON
completion, or an SSE stream of ``--chunks`` content chunks. The three contenders run one after
another, each in its own process (one worker each), behind the same closed-loop load generator
(aiohttp, this process). For streamed and non-streamed requests it measures:

- latency p50/p99 at ``--concurrency`` and the latency each gateway adds to the direct call;
- the highest request rate reached with zero errors over ``--levels`` of concurrency.

LiteLLM (``litellm[proxy]``, pinned in ``litellm_proxy.py``) is installed on first use into a
virtualenv of its own under ``data/bench``. Results go to ``bench/results/gateway-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gateway_load
import litellm_proxy
import uvloop
from processes import free_port, server_process

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FAKE = ROOT / "tests" / "api" / "fake_upstream.py"
GLMSERVE = Path(sys.executable).parent / "glmserve"
GLMSERVE_KEY = "benchbenchbenchbenchbenchbench12.BenchSecret12345"
MODEL = "bench"
MESSAGES = [{"role": "user", "content": "Say hello in ten words."}]


@contextmanager
def contender(
    name: str, args: argparse.Namespace, upstream: str
) -> Iterator[tuple[str, dict[str, str], str]]:
    """Start one contender; yields (chat URL, headers, model name)."""
    logs = args.data_dir / "logs"
    if name == "direct":
        yield f"{upstream}/chat/completions", {}, "ok"
        return
    port = free_port()
    if name == "glmserve":
        config = args.data_dir / "gateway.toml"
        config.write_text(
            f'[[models]]\nname = "{MODEL}"\n[[models.deployments]]\nkind = "openai"\n'
            f'base_url = "{upstream}"\nmodel = "ok"\nhealth_interval_s = 0\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("GLMSERVE_")}
        env |= {
            "GLMSERVE_DATA_DIR": str(args.data_dir / "glmserve"),
            "GLMSERVE_API_KEY": GLMSERVE_KEY,
            "GLMSERVE_LOG_LEVEL": "warning",
        }
        cmd = [str(GLMSERVE), "serve", "--host", "127.0.0.1", "--port", str(port), "--config", str(config)]
        with server_process(
            cmd, env=env, health_url=f"http://127.0.0.1:{port}/health", log_path=logs / "glmserve.log"
        ):
            yield (
                f"http://127.0.0.1:{port}/v1/chat/completions",
                {"authorization": f"Bearer {GLMSERVE_KEY}"},
                MODEL,
            )
        return
    cli = litellm_proxy.ensure(args.data_dir / ".venv-litellm", logs / "litellm-install.log")
    config = args.data_dir / "litellm.yaml"
    config.write_text(litellm_proxy.config(upstream, "ok", MODEL))
    env = dict(os.environ) | {"LITELLM_LOG": "ERROR", "LITELLM_MODE": "PRODUCTION"}
    with server_process(
        litellm_proxy.command(cli, config, port),
        env=env,
        timeout_s=180,
        health_url=f"http://127.0.0.1:{port}/health/liveliness",
        log_path=logs / "litellm.log",
    ):
        headers = {"authorization": f"Bearer {litellm_proxy.MASTER_KEY}"}
        yield f"http://127.0.0.1:{port}/v1/chat/completions", headers, MODEL


def measure(
    url: str, headers: dict[str, str], model: str, stream: bool, args: argparse.Namespace
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": MESSAGES, "stream": stream}

    def run(concurrency: int, seconds: float) -> gateway_load.Run:
        return uvloop.run(gateway_load.load(url, body, headers, concurrency, seconds))

    run(args.concurrency, args.warmup)
    latency = run(args.concurrency, args.seconds).summary()
    ramp = [run(level, args.level_seconds).summary() for level in args.levels]
    clean = [r["rps"] for r in ramp if r["errors"] == 0]
    return {"latency": latency, "ramp": ramp, "max_rps_zero_errors": max(clean) if clean else 0.0}


def compare(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("non_stream", "stream"):
        base = results["direct"][mode]["latency"]
        added = {}
        for name in ("glmserve", "litellm"):
            lat = results[name][mode]["latency"]
            added[name] = {q: round(lat[f"{q}_ms"] - base[f"{q}_ms"], 3) for q in ("p50", "p99")}
        glm, lite = added["glmserve"]["p50"], added["litellm"]["p50"]
        rate = results["glmserve"][mode]["max_rps_zero_errors"] / max(
            results["litellm"][mode]["max_rps_zero_errors"], 1e-9
        )
        out[mode] = {
            "added_ms": added,
            "added_p50_ratio_glmserve_to_litellm": round(glm / lite, 3) if lite > 0 else None,
            "max_rps_ratio_glmserve_to_litellm": round(rate, 2),
            "target_met": bool(lite > 0 and glm <= lite / 3 and rate >= 2),
        }
    return out


def print_table(results: dict[str, dict[str, Any]], ratios: dict[str, Any]) -> None:
    print(
        f"\n{'contender':10} {'mode':10} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8}"
        f" {'max rps (0 err)':>16}"
    )
    for mode in ("non_stream", "stream"):
        for name, by_mode in results.items():
            lat = by_mode[mode]["latency"]
            added = ratios[mode]["added_ms"].get(name, {"p50": 0.0, "p99": 0.0})
            print(
                f"{name:10} {mode:10} {lat['p50_ms']:>8.2f} {lat['p99_ms']:>8.2f} {added['p50']:>8.2f} "
                f"{added['p99']:>8.2f} {by_mode[mode]['max_rps_zero_errors']:>16.1f}"
            )
    for mode, r in ratios.items():
        print(
            f"{mode}: glmserve/LiteLLM added p50 = {r['added_p50_ratio_glmserve_to_litellm']}"
            " (target <= 0.333), "
            f"max rps glmserve/LiteLLM = {r['max_rps_ratio_glmserve_to_litellm']} (target >= 2): "
            f"{'met' if r['target_met'] else 'NOT met'}"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="latency run per contender and mode")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrency of the latency run")
    parser.add_argument("--levels", default="4,16,64", help="concurrency levels for the request-rate ramp")
    parser.add_argument("--level-seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--chunks", type=int, default=16, help="content chunks per streamed answer")
    parser.add_argument("--only", default="direct,glmserve,litellm")
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = parser.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    if args.quick:
        args.seconds, args.level_seconds, args.warmup = 2.0, 1.5, 0.5
    args.data_dir = args.data_dir.resolve()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    return args


def main() -> None:
    args = parse_args()
    upstream_port = free_port()
    upstream = f"http://127.0.0.1:{upstream_port}/v1"
    fake = [sys.executable, str(FAKE), "--port", str(upstream_port), "--chunks", str(args.chunks)]
    results: dict[str, dict[str, Any]] = {}
    with server_process(
        fake,
        env=dict(os.environ),
        health_url=f"{upstream}/models",
        log_path=args.data_dir / "logs" / "fake-upstream.log",
    ):
        for name in args.only.split(","):
            with contender(name, args, upstream) as (url, headers, model):
                results[name] = {}
                for mode, stream in (("non_stream", False), ("stream", True)):
                    results[name][mode] = measure(url, headers, model, stream, args)
                    lat = results[name][mode]["latency"]
                    print(
                        f"{name:10} {mode:10} {lat} max_rps={results[name][mode]['max_rps_zero_errors']}",
                        flush=True,
                    )
    ratios = compare(results) if {"direct", "glmserve", "litellm"} <= results.keys() else {}
    if ratios:
        print_table(results, ratios)
    meta = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "litellm": litellm_proxy.LITELLM,
        **{
            k: v
            for k, v in vars(args).items()
            if k in ("seconds", "concurrency", "levels", "level_seconds", "chunks")
        },
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"gateway-{dt.date.today().isoformat()}.json"
    out.write_text(json.dumps({"meta": meta, "results": results, "ratios": ratios}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
