"""CPU time per request on the gateway hot path: what glmserve, the fake upstream and wrk each
spend, read from /proc during one wrk run (a diagnostic for ``bench/hot_path.py``, not a verdict).

    .venv/bin/python bench/gateway_cpu.py [--contender glmserve-sqlite] [--connections 16]
        [--seconds 10] [--stream] [--repeat 1]

glmserve serves one event loop on one thread, so at c=16 its throughput is about 1 / (its CPU
time per request): the figure a change to the hot path must move. Each repeat prints the
req/s and, per request, glmserve's user and system CPU (all its threads) and the fake's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import hot_path
import warm_contender
import wrk_load

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of ``pid``, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    choices = (*hot_path.NAMES[1:4], *hot_path.EXTRA)
    parser.add_argument("--contender", default="glmserve-sqlite", choices=choices)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--data-dir", type=Path, default=HERE.parent / "data" / "bench")
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    with warm_contender.warmed(args, "cpu") as warm:
        endpoint, body, server, upstream_pid = warm.endpoint, warm.body, warm.pid, warm.upstream_pid
        for _ in range(args.repeat):
            before = cpu_s(server), cpu_s(upstream_pid), time.perf_counter()
            run = wrk_load.run(endpoint.url, body, endpoint.headers, args.connections, args.seconds)
            after = cpu_s(server), cpu_s(upstream_pid), time.perf_counter()
            n = max(1, run.requests)
            per = {
                "rps": round(run.rps, 1),
                "errors": run.errors,
                "glmserve_user_ms": round((after[0][0] - before[0][0]) * 1000 / n, 3),
                "glmserve_sys_ms": round((after[0][1] - before[0][1]) * 1000 / n, 3),
                "fake_ms": round((sum(after[1]) - sum(before[1])) * 1000 / n, 3),
                "glmserve_cores": round((sum(after[0]) - sum(before[0])) / (after[2] - before[2]), 2),
            }
            print(json.dumps(per))
    return 0


if __name__ == "__main__":
    sys.exit(main())
