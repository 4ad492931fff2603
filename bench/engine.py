"""Engine benchmark: glmserve against llama.cpp's own server, llama-cpp-python and xllamacpp direct.

    .venv/bin/python bench/engine.py [--model glm-4.6] [--gguf PATH] [--passes 2] [--requests 20]
        [--quick] [--skip-llama-cpp-python] [--only glmserve,llama-server] [--levels 1,4,8]

glmserve is asked for ``--model`` (a public name); every other contender loads the GGUF glmserve
serves for it (``model_source``), or ``--gguf``. All use the same threads and receive the same
requests (greedy, a fixed token budget, streamed). Contenders run one after another, never side
by side, in ``--passes`` passes whose order alternates (A B C, then C B A). For each concurrency
level a pass sends at least ``--requests`` requests (a whole number of rounds of ``level``); the
figures are aggregate output tok/s, TTFT p50/p95, inter-token latency, decode rate and failures.
One multi-turn conversation (first pass) shows the prompt cache. The targets, their statistics
and sample sizes are fixed in ``targets.py`` and printed first; ``verdicts.py`` judges them on
the samples pooled over all passes, with the per-pass quotients beside as the spread. It prints
a table and the verdicts, and writes ``bench/results/engine-<date>.json`` and ``.png``. Server
logs go to ``<data-dir>/logs/<time>/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

import llama_cpp_python
import load
import model_source
import plot
import report
import summary
import targets
from contenders import CONTENDERS, Contender, Setup, Skipped
from llama_server import llama_cpp_build
from processes import StartFailed
from tqdm import tqdm
from transports import TransportError

HERE = Path(__file__).resolve().parent
RATIO_LEVEL = 4  # the default-settings contenders run only here, for their ratios


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 requests, 1 pass, 32 tokens: a smoke run")
    parser.add_argument("--model", default="glm-4.6", help="model name glmserve is asked for [glm-4.6]")
    parser.add_argument("--gguf", type=Path, help="GGUF for the other contenders [what glmserve serves]")
    parser.add_argument("--skip-llama-cpp-python", action="store_true", help="do not build or run it")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(CONTENDERS)}")
    parser.add_argument("--levels", default="1,2,4,8", help="concurrency levels [1,2,4,8]")
    parser.add_argument(
        "--requests", type=int, help=f"requests per level and pass [{targets.MIN_REQUESTS_PER_PASS}]"
    )
    parser.add_argument("--passes", type=int, help="passes over the contenders, alternating [2; quick 1]")
    parser.add_argument("--max-tokens", type=int, help="tokens generated per request [128; quick 32]")
    parser.add_argument("--turns", type=int, default=4, help="turns of the multi-turn conversation [4]")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="threads, every contender")
    parser.add_argument("--parallel", type=int, default=4, help="slots (glmserve, llama.cpp server) [4]")
    parser.add_argument("--ctx-per-slot", type=int, default=4096, help="context per slot [4096]")
    parser.add_argument("--data-dir", type=Path, default=HERE.parent / "data" / "bench")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    parser.add_argument("--tag", help="results file name engine-<date>-<tag>.json (a partial run)")
    parser.add_argument(
        "--setup-only", action="store_true", help="only assemble the model and build llama-cpp-python"
    )
    args = parser.parse_args(argv)
    args.levels = sorted({int(c) for c in args.levels.split(",")})
    args.requests = args.requests or (2 if args.quick else targets.MIN_REQUESTS_PER_PASS)
    args.passes = args.passes or (1 if args.quick else targets.MIN_PASSES)
    args.max_tokens = args.max_tokens or (32 if args.quick else 128)
    args.items = 20 if args.quick else 40
    chosen = args.only.split(",") if args.only else list(CONTENDERS)
    if unknown := set(chosen) - set(CONTENDERS):
        parser.error(f"unknown contender(s): {', '.join(sorted(unknown))}")
    args.contenders = [CONTENDERS[k] for k in CONTENDERS if k in chosen]
    return args


def levels_of(contender: Contender, args: argparse.Namespace) -> list[int]:
    return args.levels if contender.full_sweep else [RATIO_LEVEL]


def requests_at(level: int, args: argparse.Namespace) -> int:
    """At least ``--requests``, in whole rounds of ``level`` (8 at c=8 for 20 asked: 24)."""
    return -(-int(args.requests) // level) * level


def planned(contender: Contender, args: argparse.Namespace, first_pass: bool = True) -> int:
    """Requests the contender will send in one pass, for the progress bar."""
    turns: int = args.turns if contender.full_sweep and first_pass else 0
    return sum(requests_at(c, args) for c in levels_of(contender, args)) + turns


def measure(
    contender: Contender,
    setup: Setup,
    args: argparse.Namespace,
    bar: tqdm[Any],
    earlier: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One pass of ``contender``; ``earlier``: its entry from the passes before, merged into."""
    entry: dict[str, Any] = earlier or {"label": contender.label, "status": "ok", "reason": None, "runs": {}}
    if entry["status"] != "ok":
        return entry
    first_pass = not entry.get("loadavg_at_pass_start")
    entry.setdefault("loadavg_at_pass_start", []).append(os.getloadavg())
    start = bar.n
    try:
        bar.set_description(f"{contender.key}: starting")
        with contender.launch(setup) as running:
            entry.setdefault("info", running.info)
            warm = load.warm_up(running.transport)
            entry["warm_up_error"] = warm.error
            for c in levels_of(contender, args):
                bar.set_description(f"{contender.key} c={c}")
                run = load.run_level(running.transport, c, requests_at(c, args), args.max_tokens, bar.update)
                entry["runs"].setdefault(c, []).append(run)
            if contender.full_sweep and first_pass:
                bar.set_description(f"{contender.key} multi-turn")
                turns = load.run_conversation(
                    running.transport, args.turns, args.max_tokens, args.items, bar.update
                )
                entry["conversation"] = summary.summarize_conversation(turns)
    except Skipped as exc:
        entry.update(status="skipped", reason=str(exc))
    except (StartFailed, TransportError, OSError, ValueError) as exc:
        entry.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
    bar.update(max(0, planned(contender, args, first_pass) - (bar.n - start)))
    if entry["reason"]:
        tqdm.write(f"{contender.label}: {entry['reason']}")
    return entry


def pooled_levels(entry: dict[str, Any]) -> None:
    """Each level's passes pooled: total tokens over total wall time, percentiles over every request."""
    runs: dict[int, list[load.LevelRun]] = entry.pop("runs", {})
    entry["passes"] = max((len(r) for r in runs.values()), default=0)
    entry["levels"] = [
        summary.summarize_level(
            load.LevelRun(c, sum(r.wall_s for r in parts), [x for r in parts for x in r.results]),
            fewest_per_pass=min(len(r.results) for r in parts),
        )
        | {
            "requests_per_pass": [len(r.results) for r in parts],
            "per_pass": [summary.pass_figures(r) for r in parts],
        }
        for c, parts in sorted(runs.items())
    ]


def setup_for(args: argparse.Namespace, log_dir: Path) -> Setup:
    model, args.gguf_source = model_source.resolve(args.model, args.data_dir.resolve(), args.gguf)
    return Setup(
        model=model,
        data_dir=args.data_dir.resolve(),
        log_dir=log_dir,
        threads=args.threads,
        parallel=args.parallel,
        ctx_per_slot=args.ctx_per_slot,
        skip_llama_cpp_python=args.skip_llama_cpp_python,
        served_model=args.model,
        env=model_source.only_model_env(args.model, model),
    )


def header(
    args: argparse.Namespace, setup: Setup, today: str, loadavg: tuple[float, float, float]
) -> dict[str, Any]:
    """``loadavg``: taken as the benchmark started, before it assembled the model."""
    import xllamacpp

    cpus, load_1min = os.cpu_count() or 1, loadavg[0]
    invalid = (
        f"1-minute load average {load_1min:.2f} on {cpus} CPUs at the start "
        f"(limit {targets.MAX_LOAD_PER_CPU * cpus:.2f}): another process was using the machine"
        if targets.busy(load_1min, cpus)
        else None
    )
    return {
        "date": today,
        "started_at": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "xllamacpp": getattr(xllamacpp, "__version__", "unknown"),
            "llama_cpp_build": llama_cpp_build(),
            "xllamacpp_system_info": xllamacpp.get_system_info().strip(),
            "loadavg_start": loadavg,
            "invalid_reason": invalid,
        },
        "targets": [dataclasses.asdict(t) for t in targets.ENGINE_TARGETS],
        "rules": targets.rules(),
        "settings": {
            "model": str(setup.model),
            "model_source": args.gguf_source,
            "model_name": setup.model.stem,
            "served_model": args.model,
            "levels": args.levels,
            "requests_per_level": {c: requests_at(c, args) for c in args.levels},
            "passes": args.passes,
            "max_tokens": args.max_tokens,
            "turns": args.turns,
            "catalogue_items": args.items,
            "threads": args.threads,
            "parallel": args.parallel,
            "ctx_per_slot": args.ctx_per_slot,
            "quick": args.quick,
            "sampling": "temperature 0, stream, stream_options.include_usage",
            "glmserve_models": "only the benchmarked model (GLMSERVE_MODELS), as llama-server serves one",
        },
        "contenders": {},
    }


def prepare_only(args: argparse.Namespace, setup: Setup) -> None:
    print(f"model: {setup.model} ({args.gguf_source})")
    if args.skip_llama_cpp_python:
        return
    print(f"building {llama_cpp_python.PACKAGE} into {llama_cpp_python.VENV} (10-15 min)...", flush=True)
    install = llama_cpp_python.ensure(setup.log_dir / "llama-cpp-python-build.log")
    took = "already built" if install.build_s is None else f"built in {install.build_s:.0f}s"
    print(f"llama-cpp-python {install.version}: {took}")


def announce_build(contender: Contender, setup: Setup) -> None:
    if contender.key != "llama-cpp-python" or setup.skip_llama_cpp_python:
        return
    if llama_cpp_python.probe(llama_cpp_python.VENV) is None:
        tqdm.write(
            f"building llama-cpp-python into {llama_cpp_python.VENV} (10-15 min, log in {setup.log_dir})"
        )


def _terminate(*_: object) -> NoReturn:
    raise SystemExit(143)  # unwinds through every launcher's finally, which stops its server


def main(argv: list[str] | None = None) -> int:
    loadavg = os.getloadavg()
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    today = dt.date.today().isoformat()
    log_dir = args.data_dir.resolve() / "logs" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    setup = setup_for(args, log_dir)
    if args.setup_only:
        prepare_only(args, setup)
        return 0
    results = header(args, setup, today, loadavg)
    print("\n".join(targets.engine_lines()))
    if reason := results["machine"]["invalid_reason"]:
        print(f"INVALID RUN: {reason}; every verdict will read INVALID", flush=True)
    per_pass = [planned(c, args, first_pass=i == 0) for i in range(args.passes) for c in args.contenders]
    print(f"contenders: {', '.join(c.key for c in args.contenders)}; logs: {log_dir}", flush=True)
    entries: dict[str, dict[str, Any]] = {}
    with tqdm(total=sum(per_pass), unit="req", dynamic_ncols=True) as bar:
        for n in range(args.passes):
            # Alternate the order, so that a slow spell of the machine does not fall on one contender.
            order = args.contenders if n % 2 == 0 else args.contenders[::-1]
            for contender in order:
                announce_build(contender, setup)
                entries[contender.key] = measure(contender, setup, args, bar, entries.get(contender.key))
    for contender in args.contenders:
        pooled_levels(entries[contender.key])
        results["contenders"][contender.key] = entries[contender.key]
    results["machine"]["loadavg_end"] = os.getloadavg()
    report.attach_verdicts(results)
    stem = f"engine-{today}" + (f"-{args.tag}" if args.tag else "")
    json_path, png_path = args.out_dir / f"{stem}.json", args.out_dir / f"{stem}.png"
    report.write_json(results, json_path)
    plot.write_png(results, png_path)
    print(report.text(results))
    print(f"\nwrote {json_path}\nwrote {png_path}")
    return 0 if any(e["status"] == "ok" for e in results["contenders"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
