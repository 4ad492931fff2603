"""Reliability under load and faults (issue 21): one table of figures, each against its target.

    .venv/bin/python bench/reliability.py [--smoke] [--only NAME,...] [--data-dir DIR]

Sections (scenarios in ``tests/api/reliability_*.py``, shared with the CI-sized tests):

- load held: 200 concurrent streams for 60 s through the gateway vs a fake upstream (16 chunks
  20 ms apart), ``/livez`` probed every 50 ms by a process of its own; the same generator against
  the upstream directly (the generator is not the bottleneck when it gets more from the upstream
  alone); 64 streams against the embedded engine;
- faults: upstream resetting 20% of connections, stalling, killed and restarted; full outage
  (retry amplification, breaker on and off); Redis stopped (limits fail open and closed);
  PostgreSQL restarted; ``kill -9`` under load, 20 cycles on SQLite and PostgreSQL;
- two replicas on PostgreSQL + Redis behind HAProxy, one killed mid-load;
- bad inputs: property-based fuzzing of every route.

Redis, PostgreSQL and HAProxy are private instances on free ports (``private_services.py``);
the machine's own are never stopped. Results go to ``bench/results/reliability-<date>.json``.
Full run: about 20 minutes on a quiet machine; ``--smoke`` (small sizes): about 6.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tests.api import reliability_scenarios as sc  # noqa: E402
from tests.api import reliability_state as state  # noqa: E402
from tests.api import server_process  # noqa: E402
from tests.api.credentials import new_zhipu_key  # noqa: E402
from tests.api.private_services import PrivatePostgres  # noqa: E402
from tests.api.reliability_fuzz import fuzz  # noqa: E402
from tests.api.reliability_rig import QUIET, FakeProcess, start_gateway  # noqa: E402

FULL = {
    "held": (200, 60), "embedded": (64, 60), "resets": (64, 30), "stall": (32, 20), "restart": (64, 20),
    "amplification": 1000, "redis": (64, 20), "postgres": (64, 20), "kill9": (20, 16),
    "replicas": (32, 20), "fuzz": 2000,
}  # fmt: skip
SMOKE = {
    "held": (20, 5), "embedded": (4, 5), "resets": (8, 5), "stall": (8, 8), "restart": (8, 8),
    "amplification": 60, "redis": (8, 6), "postgres": (8, 6), "kill9": (2, 8),
    "replicas": (8, 6), "fuzz": 200,
}  # fmt: skip
SECTIONS = ("held", "embedded", "faults", "state", "kill9", "replicas", "fuzz")


def headline(v: sc.Verdict) -> str:
    """The figures that decide the verdict, in a few words."""
    f = v.figures
    if v.name == "load held: gateway":
        g, d, lz = f["gateway"], f["direct"], f["livez"]
        return (
            f"{g['completed']}/{g['requests']} ok, p50 {g['p50_ms']} p99 {g['p99_ms']} ms, {g['rps']} rps; "
            f"direct {d['rps']} rps p50 {d['p50_ms']} ms; /livez (liveness port) p50 {lz['p50_ms']} "
            f"p99 {lz['p99_ms']} ms; main-port /livez (loop lag) p99 {f['livez_main_port']['p99_ms']} ms"
        )
    if "error" in f:
        return f"error: {f['error']}"
    if "requests" in f and "completed" in f:
        line = f"{_ok(f)}, p50 {f['p50_ms']} p99 {f['p99_ms']} ms"
        if "connection_retries" in f:
            line += f"; {f['connection_retries']:g} connection retries, {f['ejections']:g} ejections"
        return line
    special = _special(v.name, f)
    return special if special is not None else json.dumps(f, default=str)[:260]


def _ok(s: dict[str, Any]) -> str:
    return f"{s['completed']}/{s['requests']} ok {s['failed'] or ''}".strip()


def _special(name: str, f: dict[str, Any]) -> str | None:
    if name.startswith("fault: upstream stalls"):
        return (
            f"during the stall {_ok(f['during'])}; slowest {f['slowest_ms']} ms; "
            f"first success {f['first_success_after_s']} s after"
        )
    if name.startswith("fault: upstream killed"):
        return (
            f"first success {f['first_success_after_restart_s']} s after it listens; while down "
            f"{_ok(f['while_down'])}, refusal p99 {f['refusal_p99_ms']} ms, "
            f"{f['refusals_with_retry_after']} with Retry-After"
        )
    if name.startswith("fault: full outage"):
        on, off = f["amp-on"], f["amp-off"]
        attempts = f"{on['upstream_attempts']}/{on['client_requests']}"
        return f"breaker on {on['ratio']}× ({attempts}), off {off['ratio']}×"
    if name.startswith(("fault: Redis", "fault: PostgreSQL")):
        parts = [f"{k.replace('_', ' ')} {_ok(v)}" for k, v in f.items() if isinstance(v, dict)]
        if "lost_rows" in f:
            parts.append(f"{f['lost_rows']} rows lost")
        return "; ".join(parts)
    if name.startswith("fault: kill -9"):
        return (
            f"{f['completions_seen']} completions seen, {f['cut_by_kill']} cut by the kills, "
            f"{f['lost_rows']} rows lost"
        )
    if name.startswith("replicas"):
        exact = f["rpm_exact"]
        return (
            f"RPM {exact['admitted']}/{exact['sent']} admitted (limit {exact['limit']}), across the kill "
            f"{f['rpm_across_kill']['admitted']}; after the kill {_ok(f['after_kill'])}; in flight at the "
            f"kill {_ok(f['in_flight_at_kill'])}; {f['lost_rows']} rows lost"
        )
    if name.startswith("bad inputs"):
        return f"{f['requests']} requests, statuses {f['status']}" + (
            f"; {f['failure']}" if "failure" in f else ""
        )
    return None


def run_all(args: argparse.Namespace) -> list[sc.Verdict]:
    sizes = SMOKE if args.smoke else FULL
    work = args.data_dir / "reliability"
    work.mkdir(parents=True, exist_ok=True)
    verdicts: list[sc.Verdict] = []

    def attempt(name: str, fn: Callable[[], sc.Verdict | list[sc.Verdict]]) -> None:
        started = time.monotonic()
        try:
            got = fn()
        except Exception as exc:  # one broken scenario must not hide the others' figures
            traceback.print_exc()
            got = sc.Verdict(name, "ran", False, {"error": f"{type(exc).__name__}: {exc}"[:400]})
        for v in got if isinstance(got, list) else [got]:
            v.figures["wall_s"] = round(time.monotonic() - started, 1)
            verdicts.append(v)
            print(f"{'PASS' if v.passed else 'FAIL'}  {v.name}: {headline(v)}", flush=True)

    with FakeProcess(work / "fake.log") as fake:
        if "held" in args.only or "faults" in args.only:
            with start_gateway(work / "gateway", fake) as gw:
                if "held" in args.only:
                    attempt("load held: gateway", lambda: sc.held_load(gw, fake, *sizes["held"]))
                if "faults" in args.only:
                    attempt("resets", lambda: sc.resets(gw, *sizes["resets"]))
                    attempt("stall", lambda: sc.stall(gw, fake, *sizes["stall"]))
                    attempt("restart", lambda: sc.restart(gw, fake, *sizes["restart"]))
                    attempt("amplification", lambda: sc.amplification(gw, fake, sizes["amplification"]))
        if "embedded" in args.only:
            attempt("load held: embedded", lambda: embedded(args, *sizes["embedded"]))
        if "state" in args.only:
            for mode in ("open", "closed"):
                attempt(f"redis {mode}", lambda m=mode: state.redis_stop(work, fake, m, *sizes["redis"]))
            system = args.system_postgres
            attempt(
                "postgres", lambda: state.postgres_restart(work, fake, *sizes["postgres"], system_url=system)
            )
        if "kill9" in args.only:
            cycles, conc = sizes["kill9"]
            sqlite = f"sqlite+aiosqlite:///{work / 'kill9.db'}"
            if (work / "kill9.db").exists():
                (work / "kill9.db").unlink()
            attempt(
                "kill9 sqlite", lambda: state.kill9_cycles(work / "k9-sqlite", fake, sqlite, cycles, conc)
            )
            attempt("kill9 postgres", lambda: kill9_postgres(work, fake, cycles, conc))
        if "replicas" in args.only:
            attempt("replicas", lambda: state.replicas(work / "replicas", fake, *sizes["replicas"]))
        if "fuzz" in args.only:
            with start_gateway(work / "fuzz", fake) as gw:
                attempt("fuzz", lambda: fuzz(gw, sizes["fuzz"]))
    return verdicts


def kill9_postgres(work: Path, fake: FakeProcess, cycles: int, concurrency: int) -> sc.Verdict:
    with PrivatePostgres() as pg:
        return state.kill9_cycles(work / "k9-pg", fake, pg.url, cycles, concurrency)


def embedded(args: argparse.Namespace, concurrency: int, seconds: float) -> sc.Verdict:
    data = args.data_dir / "embedded"
    env = QUIET | {"GLMSERVE_ENGINE__MAX_WAITING": str(max(64, concurrency))}
    with server_process.start(data, args.data_dir / "embedded.log", new_zhipu_key(), env) as server:
        return sc.embedded_load(server, concurrency, seconds)


def table(verdicts: list[sc.Verdict]) -> str:
    rows = [f"{'':4}  {'scenario':40}  {'target':70}  figures"]
    for v in verdicts:
        rows.append(f"{'PASS' if v.passed else 'FAIL':4}  {v.name:40}  {v.target[:70]:70}  {headline(v)}")
    passed = sum(v.passed for v in verdicts)
    rows.append(f"{passed} passed, {len(verdicts) - passed} failed")
    return "\n".join(rows)


def markdown(verdicts: list[sc.Verdict]) -> str:
    """The table as Markdown (the README's figures are pasted from it)."""
    rows = ["| scenario | target | result | figures |", "| --- | --- | --- | --- |"]
    for v in verdicts:
        figures = headline(v).replace("|", "/")
        rows.append(f"| {v.name} | {v.target} | {'PASS' if v.passed else 'FAIL'} | {figures} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--smoke", action="store_true", help="small sizes (a quick check of the suite itself)"
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections, of: {','.join(SECTIONS)}")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument(
        "--system-postgres",
        metavar="URL",
        help="restart the machine's own cluster (pg_ctlcluster … main restart) with glmserve on URL, "
        "e.g. postgresql://postgres@127.0.0.1:5432/test?search_path=relbench (the schema must exist); "
        "default: a private cluster",
    )
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = parser.parse_args()
    args.only = set(args.only.split(","))
    os.chdir(ROOT)
    started = time.monotonic()
    verdicts = run_all(args)
    print()
    print(table(verdicts))
    stamp = dt.date.today().isoformat() + ("-smoke" if args.smoke else "")
    out = args.out_dir / f"reliability-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
        "sizes": SMOKE if args.smoke else FULL,
        "wall_s": round(time.monotonic() - started, 1),
        "verdicts": [
            {"name": v.name, "target": v.target, "passed": v.passed, "figures": v.figures} for v in verdicts
        ],
    }
    out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(verdicts), encoding="utf-8")
    print(f"written to {out}")
    sys.exit(0 if all(v.passed for v in verdicts) else 1)


if __name__ == "__main__":
    main()
