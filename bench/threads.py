"""Thread count for the embedded engine, measured with and without a busy neighbour.

    .venv/bin/python bench/threads.py [--threads 1,2] [--levels 1,4] [--max-tokens 64]

For each neighbour (none, or one process spinning on a core, as another service on the box
would) and each thread count, it starts ``glmserve serve`` with ``engine.threads`` and
``engine.batch_threads`` set to that count, sends ``rounds x level`` streamed greedy requests
at each concurrency level, and records aggregate tok/s and TTFT p95. Every configuration runs
in the same invocation on the same machine, so the ratios between them are what counts. The
figures go to ``bench/results/threads-<date>.json`` and a table is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import load
from contenders import Setup, glmserve
from tqdm import tqdm

HERE = Path(__file__).resolve().parent
SPIN = "while True: pass"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", default="1,2", help="thread counts to compare [1,2]")
    parser.add_argument("--levels", default="1,4", help="concurrency levels [1,4]")
    parser.add_argument("--rounds", type=int, default=2, help="requests per level = rounds x level [2]")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per request [64]")
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--data-dir", type=Path, default=HERE.parent / "data" / "bench")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    args.threads = [int(t) for t in args.threads.split(",")]
    args.levels = [int(c) for c in args.levels.split(",")]
    return args


@contextmanager
def neighbour(busy: bool) -> Iterator[None]:
    """Nothing, or a process that keeps one core busy until the block ends."""
    if not busy:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def measure(setup: Setup, args: argparse.Namespace, bar: tqdm[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with glmserve(setup) as running:
        load.warm_up(running.transport)
        for level in args.levels:
            run = load.run_level(running.transport, level, args.rounds * level, args.max_tokens, bar.update)
            ok = [r for r in run.results if r.ok]
            ttfts = sorted(r.ttft for r in ok if r.ttft is not None)
            out[str(level)] = {
                "aggregate_tok_s": round(sum(r.tokens for r in ok) / run.wall_s, 2),
                "ttft_p95_s": round(ttfts[min(len(ttfts) - 1, int(0.95 * len(ttfts)))], 3) if ttfts else None,
                "failed": len(run.results) - len(ok),
            }
    return out


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines = ["neighbour  threads  " + "  ".join(f"c={c} tok/s  TTFT p95" for c in args.levels)]
    for key, levels in results["runs"].items():
        busy, threads = key.split("/")
        cells = "  ".join(
            f"{levels[str(c)]['aggregate_tok_s']:>9.1f}  {levels[str(c)]['ttft_p95_s']:>7.2f}s"
            for c in args.levels
        )
        lines.append(f"{busy:<9}  {threads:>7}  {cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from glmserve.engines.llamacpp.models import ensure_default_model

    data_dir = args.data_dir.resolve()
    log_dir = data_dir / "logs" / f"threads-{dt.datetime.now():%Y%m%d-%H%M%S}"
    model = ensure_default_model(data_dir)
    today = dt.date.today().isoformat()
    results: dict[str, Any] = {
        "date": today,
        "cpu_count": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("data_dir", "out_dir")},
        "runs": {},
    }
    per_run = sum(args.rounds * c for c in args.levels)
    with tqdm(total=per_run * len(args.threads) * 2, unit="req", dynamic_ncols=True) as bar:
        for busy in (False, True):
            with neighbour(busy):
                for threads in args.threads:
                    setup = Setup(model, data_dir, log_dir, threads, args.parallel, 4096, True)
                    key = f"{'busy' if busy else 'idle'}/{threads}"
                    results["runs"][key] = measure(setup, args, bar)
    results["loadavg_end"] = os.getloadavg()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"threads-{today}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results, args))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
