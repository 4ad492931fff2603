"""Where glmserve's own time goes while it serves: py-spy samples a server under streamed load.

    .venv/bin/python bench/profile.py [--level 4] [--requests 16] [--max-tokens 128]

It starts ``glmserve serve`` on the default model, attaches ``py-spy record`` (the ``bench``
extra installs it) to the server process for the length of the load, and sends ``--requests``
streamed greedy requests with ``--level`` in flight.

Sampling with ``--gil`` counts only the thread holding the GIL: every sample is Python at work,
so the share of the wall time sampled is the time the server spent in Python. The report splits
those samples by role (event loop; engine workers in glmserve's per-chunk callback or around the
llama.cpp call; others), and lists glmserve's functions by inclusive samples and the hottest
leaf frames. It writes the raw collapsed stacks and a JSON summary to
``bench/results/profile-<date>.{txt,json}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import load
from contenders import Setup, glmserve
from transports import HttpTransport

HERE = Path(__file__).resolve().parent
PY_SPY = Path(sys.executable).parent / "py-spy"
TOP = 15
# raw: collapsed stacks. --gil: only a thread holding the GIL is sampled, so every sample is
# Python at work (llama.cpp releases the GIL while it computes).
FORMAT = ("--format", "raw", "--threads", "--gil", "--nonblocking")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--level", type=int, default=4, help="requests in flight [4]")
    parser.add_argument("--requests", type=int, default=16, help="requests sent [16]")
    parser.add_argument("--max-tokens", type=int, default=128, help="tokens per request [128]")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second [200]")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--data-dir", type=Path, default=HERE.parent / "data" / "bench")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    return parser.parse_args(argv)


def server_pid(port: int) -> int:
    """The pid of the process listening on ``port`` (Linux: /proc/net/tcp, then the fd links)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = {os.readlink(fd) for fd in (proc / "fd").iterdir()}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            return int(proc.name)
    raise RuntimeError(f"no process listens on port {port}")


def role(thread: str, frames: list[str]) -> str:
    """Which part of glmserve a sampled stack belongs to, from its thread and its innermost frame."""
    name = thread.split(": ", 1)[1] if ": " in thread else thread
    if name == "MainThread":
        return "event loop"
    if name.startswith("llama-"):  # the engine's worker threads
        leaf = frames[-1] if frames else ""
        if "on_chunk" in leaf or "push" in leaf:
            return "engine worker: per-chunk callback"
        return "engine worker: inside llama.cpp"
    return f"other: {name or 'unnamed'}"


def _split(line: str) -> tuple[str, list[str], int] | None:
    """One collapsed-stack line: (thread, frames root first, samples)."""
    stack, _, count_text = line.rpartition(" ")
    if not stack or not count_text.isdigit():
        return None
    frames = stack.split(";")
    if frames[0].startswith("thread"):
        return frames[0], frames[1:], int(count_text)
    return "", frames, int(count_text)


def _ranked(counts: Counter[str], loop: int) -> list[dict[str, Any]]:
    top = counts.most_common(TOP)
    return [{"function": k, "samples": v, "share": round(v / loop, 4)} for k, v in top]


def summarize(raw: str, seconds: float, rate: int) -> dict[str, Any]:
    """Roles, glmserve's own functions (inclusive) and the hottest leaves, all threads together."""
    roles: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in raw.splitlines():
        if (parsed := _split(line)) is None:
            continue
        thread, frames, count = parsed
        roles[role(thread, frames)] += count
        for name in {_function(f) for f in frames if "glmserve/" in f}:
            ours[name] += count
        if frames:
            own[_function(frames[-1])] += count
    total = sum(roles.values())
    return {
        "samples": total,
        "gil_busy_share": round(total / (seconds * rate), 4),
        "by_role": {k: {"samples": v, "share": round(v / total, 4)} for k, v in roles.most_common()},
        "glmserve_inclusive": _ranked(ours, total),
        "leaves": _ranked(own, total),
    }


def _function(frame: str) -> str:
    """``name (path/to/file.py:line)`` -> ``name (file.py)``."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    marker = "site-packages/"
    short = path.split(marker, 1)[1] if marker in path else "/".join(path.split("/")[-2:])
    return f"{name} ({short})"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not PY_SPY.exists() and shutil.which("py-spy") is None:
        print("py-spy is missing: pip install -e .[bench]", file=sys.stderr)
        return 2
    from glmserve.engines.llamacpp.models import ensure_default_model

    data_dir = args.data_dir.resolve()
    log_dir = data_dir / "logs" / f"profile-{dt.datetime.now():%Y%m%d-%H%M%S}"
    setup = Setup(ensure_default_model(data_dir), data_dir, log_dir, args.threads, args.parallel, 4096, True)
    today = dt.date.today().isoformat()
    raw_path = args.out_dir / f"profile-{today}.txt"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with glmserve(setup) as running:
        transport = running.transport
        assert isinstance(transport, HttpTransport)
        pid = server_pid(transport.port)
        load.warm_up(transport)
        spy_bin = str(PY_SPY) if PY_SPY.exists() else "py-spy"
        spy = subprocess.Popen(
            [
                spy_bin,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(args.rate),
                *FORMAT,
                "--output",
                str(raw_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)  # attached before the first request
        started = time.perf_counter()
        run = load.run_level(transport, args.level, args.requests, args.max_tokens, lambda: None)
        spy.send_signal(2)  # SIGINT: py-spy writes what it has and exits
        sampled_s = time.perf_counter() - started + 1.0
        _, err = spy.communicate(timeout=60)
    if not raw_path.exists():
        print(f"py-spy wrote nothing: {err.decode(errors='replace')[-2000:]}", file=sys.stderr)
        return 1
    tokens, failed = sum(r.tokens for r in run.results), sum(not r.ok for r in run.results)
    report = {
        "date": today,
        "settings": {k: v for k, v in vars(args).items() if k not in ("data_dir", "out_dir")},
        "load": {
            "wall_s": round(run.wall_s, 3),
            "tokens": tokens,
            "failed": failed,
        },
        **summarize(raw_path.read_text(), sampled_s, args.rate),
    }
    json_path = args.out_dir / f"profile-{today}.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    print(text(report))
    print(f"\nwrote {raw_path}\nwrote {json_path}")
    return 0


def text(report: dict[str, Any]) -> str:
    run = report["load"]
    lines = [f"{run['tokens']} tokens in {run['wall_s']} s, {run['failed']} failed"]
    busy, samples = report["gil_busy_share"], report["samples"]
    lines.append(f"Python held the GIL {busy:.1%} of the time ({samples} samples)")
    lines.append("\nGIL-holding samples by role:")
    lines += [f"  {v['share']:7.1%}  {k}" for k, v in report["by_role"].items()]
    lines.append("\nglmserve functions, inclusive (share of GIL-holding samples):")
    lines += [f"  {e['share']:7.1%}  {e['function']}" for e in report["glmserve_inclusive"]]
    lines.append("\nhottest leaves:")
    lines += [f"  {e['share']:7.1%}  {e['function']}" for e in report["leaves"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
