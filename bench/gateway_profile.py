"""Where glmserve's time goes on the gateway hot path: py-spy on a glmserve in front of the
zero-delay fake upstream, under wrk load, with a stored key (limits, budget, usage rows).

    .venv/bin/python bench/gateway_profile.py [--contender glmserve-sqlite] [--connections 16]
        [--seconds 10] [--stream] [--tag NAME]

The contenders are ``bench/hot_path.py``'s (``glmserve-static``, ``glmserve-sqlite``,
``glmserve-postgres``). The report (``bench/profile.py``'s) lists glmserve's functions by
inclusive samples and the hottest leaves; it goes to ``bench/results/profile-gateway-<date>[-tag]``
as the raw collapsed stacks (``.txt``) and a summary (``.json``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import profile as spy_report
import subprocess
import sys
import time
from pathlib import Path

import hot_path
import warm_contender
import wrk_load

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    choices = (*hot_path.NAMES[1:4], *hot_path.EXTRA)
    parser.add_argument("--contender", default="glmserve-sqlite", choices=choices)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--rate", type=int, default=250)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--data-dir", type=Path, default=HERE.parent / "data" / "bench")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    parser.add_argument("--tag")
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"profile-gateway-{dt.date.today().isoformat()}" + (f"-{args.tag}" if args.tag else "")
    raw_path = args.out_dir / f"{stem}.txt"
    with warm_contender.warmed(args, "profile") as warm:
        endpoint, body, pid = warm.endpoint, warm.body, warm.pid
        spy = subprocess.Popen(
            [str(spy_report.PY_SPY), "record", "--pid", str(pid), "--rate", str(args.rate),
             *spy_report.FORMAT, "--output", str(raw_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        time.sleep(1.0)
        started = time.perf_counter()
        run = wrk_load.run(endpoint.url, body, endpoint.headers, args.connections, args.seconds)
        spy.send_signal(2)
        sampled_s = time.perf_counter() - started + 1.0
        _, err = spy.communicate(timeout=60)
    if not raw_path.exists():
        print(f"py-spy wrote nothing: {err.decode(errors='replace')[-2000:]}", file=sys.stderr)
        return 1
    report = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "settings": {k: v for k, v in vars(args).items() if k not in ("data_dir", "out_dir")},
        "load": {"wall_s": run.seconds, "tokens": 0, "failed": run.errors, **run.summary()},
        **spy_report.summarize(raw_path.read_text(), sampled_s, args.rate),
    }
    (args.out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{run.requests} requests in {run.seconds:.1f} s ({run.rps:.0f}/s), {run.errors} errors")
    print("\n".join(spy_report.text(report).splitlines()[1:]))
    print(f"\nwrote {raw_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
