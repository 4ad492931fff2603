"""Interactive latency beside a batch: TTFT p95 with a batch running over TTFT p95 without one.

    .venv/bin/python bench/batch_latency.py [--model glm-4.6] [--quick] [--tag NAME]

Issue 18: batch lines use spare engine capacity only, so a batch must hardly move the time to
first token of the interactive requests beside it. glmserve starts once, on its default
configuration in the benchmarks' controlled environment (``contenders.glmserve``: the engine's
slots and threads, response cache off), with a fresh database and files directory of its own,
so no batch of an earlier run is running.

Workload, fixed before the run: interactive requests are streamed, greedy, ``MAX_TOKENS`` tokens,
one at a time, all the same prompt with a tag of its own in front (so none is answered from the
prompt cache); TTFT is the time from sending to the first content delta. A busy phase first
creates a batch of ``BATCH_LINES`` chat lines of ``LINE_MAX_TOKENS`` tokens on the same model
(so they share its engine) and waits until one line has finished; the batch must still be in
progress when the phase ends and must have finished a line during it, or the phase FAILs. Then
the batch is cancelled, and the next phase starts once it has ended.

Statistic, fixed before the run: ``PASSES`` passes whose order alternates (idle then busy, then
busy then idle), ``REQUESTS`` requests a phase; the p95 of every request's TTFT pooled over the
passes, for each condition; the verdict is busy / idle <= ``TARGET``. Any failed request or
phase, fewer than ``targets.MIN_REQUESTS_PER_PASS`` requests a phase or fewer than
``targets.MIN_PASSES`` passes is a FAIL with its reason; a 1-minute load average above
``targets.MAX_LOAD_PER_CPU`` per CPU at the start makes the run INVALID. ``--quick`` (3
requests a phase, one pass, short answers) is a smoke run: its verdict FAILs for its sample size.

Output: a table and the verdict; ``bench/results/batch-latency-<date>[-tag].json`` (``--quick``:
tag ``quick`` unless given) with every request's figures, each phase's batch progress and the
load average at each phase's start.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx
import load
import model_source
import targets
from contenders import Running, Setup, glmserve
from processes import StartFailed
from summary import percentile
from transports import Transport, TransportError

HERE = Path(__file__).resolve().parent
TARGET = 1.2  # busy / idle TTFT p95, at most
STATISTIC = "p95 of every interactive request's TTFT, pooled over passes; busy / idle"
REQUESTS = 20  # a phase; two passes pool 40 a condition
PASSES = targets.MIN_PASSES
MAX_TOKENS = 32
BATCH_LINES = 200  # far more than a phase finishes: the batch is cancelled after it
LINE_MAX_TOKENS = 64
QUICK = {"requests": 3, "passes": 1, "max_tokens": 8, "batch_lines": 40, "line_max_tokens": 16}
PROMPT = "Write a detailed, step-by-step tutorial about hash maps, with a commented Python example."
BATCH_TOPICS = ("a lighthouse", "a lost key", "the first snow", "a night train", "an old map")
START_TIMEOUT_S = 300.0  # a batch's first line, or its end after a cancel


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: its verdict is not a result")
    parser.add_argument("--model", default="glm-4.6", help="model of both the requests and the batch")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="engine threads")
    parser.add_argument("--parallel", type=int, default=4, help="engine slots [4, the default]")
    parser.add_argument("--data-dir", type=Path, default=HERE.parent / "data" / "bench")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    parser.add_argument("--tag", help="results file batch-latency-<date>-<tag>.json [quick: quick]")
    args = parser.parse_args(argv)
    fixed = QUICK if args.quick else {
        "requests": REQUESTS, "passes": PASSES, "max_tokens": MAX_TOKENS,
        "batch_lines": BATCH_LINES, "line_max_tokens": LINE_MAX_TOKENS,
    }  # fmt: skip
    vars(args).update(fixed)
    args.tag = args.tag or ("quick" if args.quick else None)
    return args


def interactive_body(tag: str, max_tokens: int) -> dict[str, Any]:
    content = f"[{tag}] {PROMPT}"
    return {
        "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens,
        "temperature": 0, "stream": True, "stream_options": {"include_usage": True},
    }  # fmt: skip


def batch_lines(args: argparse.Namespace, tag: str) -> bytes:
    lines = []
    for n in range(args.batch_lines):
        content = f"[{tag}-{n}] Write a short story about {BATCH_TOPICS[n % len(BATCH_TOPICS)]}."
        body = {
            "model": args.model, "messages": [{"role": "user", "content": content}],
            "max_tokens": args.line_max_tokens, "temperature": 0,
        }  # fmt: skip
        line = {"custom_id": f"{tag}-{n}", "method": "POST", "url": "/v1/chat/completions", "body": body}
        lines.append(json.dumps(line).encode())
    return b"\n".join(lines) + b"\n"


class Batches:
    """glmserve's files and batches routes, as the benchmark's API key."""

    def __init__(self, running: Running) -> None:
        headers = {"authorization": f"Bearer {running.api_key}"}
        self._http = httpx.Client(base_url=f"{running.base_url}/v1", headers=headers, timeout=60)

    def create(self, data: bytes) -> str:
        upload = self._http.post("/files", files={"file": ("lines.jsonl", data)}, data={"purpose": "batch"})
        upload.raise_for_status()
        body = {"input_file_id": upload.json()["id"], "endpoint": "/v1/chat/completions"}
        created = self._http.post("/batches", json=body | {"completion_window": "24h"})
        created.raise_for_status()
        if created.json()["status"] != "in_progress":
            raise ValueError(f"the batch was refused: {created.json().get('errors')}")
        return str(created.json()["id"])

    def get(self, batch_id: str) -> dict[str, Any]:
        answer = self._http.get(f"/batches/{batch_id}")
        answer.raise_for_status()
        return dict(answer.json())

    def wait(self, batch_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not done(batch := self.get(batch_id)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id} still {batch['status']} after {START_TIMEOUT_S:.0f}s")
            time.sleep(0.2)
        return batch

    def cancel(self, batch_id: str) -> dict[str, Any]:
        """Cancel it if it still runs; its state once it has ended (a running line finishes)."""
        if self.get(batch_id)["status"] == "in_progress":
            self._http.post(f"/batches/{batch_id}/cancel").raise_for_status()
        return self.wait(batch_id, lambda b: b["status"] not in ("in_progress", "cancelling"))

    def close(self) -> None:
        self._http.close()


@dataclass
class Phase:
    condition: str  # "idle" or "busy"
    pass_no: int
    loadavg_at_start: tuple[float, float, float]
    results: list[load.RequestResult] = field(default_factory=list)
    batch: dict[str, Any] | None = None  # busy: the batch's progress across the phase
    problem: str | None = None  # a reason the phase FAILs

    def record(self) -> dict[str, Any]:
        return {
            "condition": self.condition, "pass": self.pass_no,
            "loadavg_at_start": self.loadavg_at_start, "problem": self.problem, "batch": self.batch,
            "requests": [r.record() for r in self.results],
        }  # fmt: skip


def interactive(transport: Transport, phase: Phase, args: argparse.Namespace) -> None:
    for n in range(args.requests):
        tag = f"{phase.condition}-{phase.pass_no}-{n}"
        phase.results.append(load.send(transport, interactive_body(tag, args.max_tokens)))


def completed(batch: dict[str, Any]) -> int:
    return int(batch["request_counts"]["completed"])


def busy_phase(transport: Transport, batches: Batches, phase: Phase, args: argparse.Namespace) -> None:
    batch_id = batches.create(batch_lines(args, f"batch-{phase.pass_no}"))
    progress: dict[str, Any] = {"id": batch_id, "lines": args.batch_lines}
    phase.batch = progress
    try:
        first = batches.wait(batch_id, lambda b: completed(b) >= 1 or b["status"] != "in_progress")
        progress["completed_at_start"] = completed(first)
        interactive(transport, phase, args)
        last = batches.get(batch_id)
        progress |= {"completed_at_end": completed(last), "status_at_end": last["status"]}
    finally:
        progress["final_status"] = batches.cancel(batch_id)["status"]  # the next phase is idle
    if progress["status_at_end"] != "in_progress":
        phase.problem = f"the batch was {progress['status_at_end']} before the phase ended"
    elif progress["completed_at_end"] <= progress["completed_at_start"]:
        phase.problem = "no batch line finished during the phase: the batch did not run beside it"


def run_phase(
    running: Running, batches: Batches, condition: str, pass_no: int, args: argparse.Namespace
) -> Phase:
    phase = Phase(condition, pass_no, os.getloadavg())
    try:
        if condition == "busy":
            busy_phase(running.transport, batches, phase, args)
        else:
            interactive(running.transport, phase, args)
    except (httpx.HTTPError, TransportError, TimeoutError, ValueError, KeyError) as exc:
        phase.problem = f"{type(exc).__name__}: {exc}"
    print(describe(phase), flush=True)
    return phase


def ttfts(phase: Phase) -> list[float]:
    return [t for r in phase.results if (t := r.ttft) is not None]


def describe(phase: Phase) -> str:
    p95 = percentile(ttfts(phase), 95)
    failed = sum(not r.ok for r in phase.results)
    text = f"pass {phase.pass_no} {phase.condition:4}: {len(phase.results)} requests, {failed} failed"
    text += f", TTFT p95 {'-' if p95 is None else f'{p95:.3f}s'}"
    if (batch := phase.batch) and "completed_at_end" in batch:
        text += f", batch lines finished {batch['completed_at_end'] - batch['completed_at_start']}"
    return text + (f"; FAIL: {phase.problem}" if phase.problem else "")


def fail_reasons(phases: list[Phase], args: argparse.Namespace) -> list[str]:
    """Why the verdict cannot PASS, whatever the ratio: failed phases, requests, sample sizes."""
    reasons = [f"pass {p.pass_no} {p.condition}: {p.problem}" for p in phases if p.problem]
    for p in phases:
        if errors := [r.error or "no finish_reason" for r in p.results if not r.ok]:
            reasons.append(f"pass {p.pass_no} {p.condition}: {len(errors)} failed request(s): {errors[0]}")
    if args.requests < targets.MIN_REQUESTS_PER_PASS:
        reasons.append(f"sample size: {args.requests} requests a phase (< {targets.MIN_REQUESTS_PER_PASS})")
    if args.passes < targets.MIN_PASSES:
        reasons.append(f"passes: {args.passes} (< {targets.MIN_PASSES})")
    return reasons


def verdict(phases: list[Phase], args: argparse.Namespace, invalid: str | None) -> dict[str, Any]:
    pooled = {c: [t for p in phases if p.condition == c for t in ttfts(p)] for c in ("idle", "busy")}
    p95 = {c: percentile(values, 95) for c, values in pooled.items()}
    ratio = p95["busy"] / p95["idle"] if p95["busy"] is not None and p95["idle"] else None
    reasons = fail_reasons(phases, args)
    if ratio is None:
        reasons.append("no ratio: a condition has no TTFT")
    elif ratio > TARGET:
        reasons.append(f"busy / idle TTFT p95 {ratio:.3f} > {TARGET}")
    return {
        "status": "INVALID" if invalid else "FAIL" if reasons else "PASS",
        "ratio": ratio, "target": TARGET, "statistic": STATISTIC, "ttft_p95_s": p95,
        "ttft_p50_s": {c: percentile(v, 50) for c, v in pooled.items()},
        "samples": {c: len(v) for c, v in pooled.items()}, "reasons": reasons, "invalid_reason": invalid,
    }  # fmt: skip


def summary_lines(result: dict[str, Any], path: Path) -> list[str]:
    shown = {c: "-" if v is None else f"{v:.3f}s" for c, v in result["ttft_p95_s"].items()}
    ratio = "-" if result["ratio"] is None else f"{result['ratio']:.3f}"
    samples = result["samples"]
    return [
        f"\nTTFT p95: idle {shown['idle']} ({samples['idle']} requests), busy {shown['busy']} "
        f"({samples['busy']}); busy / idle {ratio} (target <= {TARGET})",
        result["status"],
        *(f"  {reason}" for reason in result["reasons"]),
        f"\nwrote {path}",
    ]


def measure(setup: Setup, args: argparse.Namespace) -> tuple[list[Phase], dict[str, Any]]:
    phases: list[Phase] = []
    with glmserve(setup) as running:
        batches = Batches(running)
        try:
            warm = load.warm_up(running.transport)
            for n in range(args.passes):
                order = ("idle", "busy") if n % 2 == 0 else ("busy", "idle")
                phases += [run_phase(running, batches, condition, n + 1, args) for condition in order]
        finally:
            batches.close()
        return phases, running.info | {"warm_up_error": warm.error}


def target_lines(args: argparse.Namespace) -> list[str]:
    return [
        "Target (fixed before the run in bench/batch_latency.py; statistic in brackets):",
        f"  interactive TTFT with a batch running / without [{STATISTIC}] <= {TARGET:.2f}",
        f"  rule: {args.requests} streamed requests a phase, one at a time, {args.max_tokens} tokens; "
        f"{args.passes} pass(es), idle/busy order alternating; a batch of {args.batch_lines} lines "
        f"x {args.line_max_tokens} tokens on {args.model} runs through each busy phase",
        *(f"  rule: {r}" for r in targets.rules()),
    ]


def _terminate(*_: object) -> NoReturn:
    raise SystemExit(143)  # unwinds through the launcher's finally, which stops glmserve


def main(argv: list[str] | None = None) -> int:
    loadavg = os.getloadavg()
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    cpus = os.cpu_count() or 1
    invalid = (
        f"1-minute load average {loadavg[0]:.2f} on {cpus} CPUs at the start "
        f"(limit {targets.MAX_LOAD_PER_CPU * cpus:.2f}): another process was using the machine"
        if targets.busy(loadavg[0], cpus)
        else None
    )
    print("\n".join(target_lines(args)))
    if invalid:
        print(f"INVALID RUN: {invalid}; the verdict will read INVALID", flush=True)
    data_dir = args.data_dir.resolve()
    gguf, source = model_source.resolve(args.model, data_dir, None)
    log_dir = data_dir / "logs" / f"batch-latency-{dt.datetime.now():%Y%m%d-%H%M%S}"
    with tempfile.TemporaryDirectory(prefix="bench-batch-latency-") as tmp:
        env = {"GLMSERVE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/glmserve.db"}
        env["GLMSERVE_JOBS__FILES_DIR"] = f"{tmp}/files"
        setup = Setup(gguf, data_dir, log_dir, args.threads, args.parallel, 4096, True, args.model, env)
        try:
            phases, info = measure(setup, args)
        except (StartFailed, TransportError, OSError) as exc:
            print(f"FAIL: glmserve: {type(exc).__name__}: {exc}")
            return 1
    result = verdict(phases, args, invalid)
    today = dt.date.today().isoformat()
    machine = {"cpu_count": cpus, "loadavg_start": loadavg, "loadavg_end": os.getloadavg()}
    settings = {k: v for k, v in vars(args).items() if k not in ("data_dir", "out_dir")}
    settings |= {"gguf": str(gguf), "gguf_source": source, "prompt": PROMPT}
    document = {
        "date": today, "machine": machine, "settings": settings, "glmserve": info, "verdict": result,
        "phases": [p.record() for p in phases],
    }  # fmt: skip
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / (f"batch-latency-{today}" + (f"-{args.tag}" if args.tag else "") + ".json")
    path.write_text(json.dumps(document, indent=1, default=str) + "\n")
    print("\n".join(summary_lines(result, path)))
    return 0 if result["status"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
