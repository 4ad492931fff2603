"""Each packaged model's cost: verification, load time, memory and decode speed on this machine.

    .venv/bin/python bench/models.py [--data-dir DIR] [--runs N] [--max-tokens N]

For every model in the registry (``glmserve.engines.llamacpp.models.PACKAGED``), in a fresh
process of its own so that memory figures do not mix:

* ``assemble_s``: concatenating the parts into the data dir (first use only; 0 when present);
* ``verify_s``: the size and SHA-256 check glmserve does before every load;
* ``load_s``: building the engine (llama.cpp loads the GGUF and warms up) with glmserve's
  default engine settings (4 slots of 4096 tokens, threads = CPU count unless ``--threads``);
* ``rss_mib``: the process's resident memory after loading (peak in ``rss_peak_mib``);
* ``decode_tok_s``: single-stream decode speed, greedy, median of ``--runs`` generations
  (tokens after the first / time after the first); ``ttft_s`` beside it;
* ``aggregate_tok_s_c4``: four generations at once (every slot busy), completion tokens / wall.

Prints a table and writes ``bench/results/models-<date>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROMPT = "请写一篇关于春天的散文，不少于五百字。"


def rss_mib(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


async def one(engine: Any, max_tokens: int) -> dict[str, float]:
    from glmserve.engines.base import Generation, Sampling, Text, Usage

    gen = Generation(
        messages=[{"role": "user", "content": PROMPT}],
        sampling=Sampling(temperature=0.0, top_p=1.0, max_tokens=max_tokens),
    )
    started = time.perf_counter()
    first = last = None
    tokens = 0
    async for ev in engine.stream(gen):
        if isinstance(ev, Text):
            last = time.perf_counter()
            first = first or last
        elif isinstance(ev, Usage):
            tokens = ev.completion_tokens
    assert first is not None and last is not None
    decode = (tokens - 1) / (last - first) if last > first else 0.0
    return {"ttft_s": first - started, "tokens": tokens, "decode_tok_s": decode, "wall_s": last - started}


async def measure_loaded(engine: Any, runs: int, max_tokens: int) -> dict[str, Any]:
    singles = [await one(engine, max_tokens) for _ in range(runs)]
    started = time.perf_counter()
    batch = await asyncio.gather(*(one(engine, max_tokens) for _ in range(4)))
    wall = time.perf_counter() - started
    return {
        "decode_tok_s": statistics.median(r["decode_tok_s"] for r in singles),
        "ttft_s": statistics.median(r["ttft_s"] for r in singles),
        "aggregate_tok_s_c4": sum(r["tokens"] for r in batch) / wall,
        "single_runs": singles,
    }


def child(name: str, data_dir: Path, runs: int, max_tokens: int, threads: int) -> dict[str, Any]:
    """Runs in the fresh process: assemble/verify, load, generate."""
    from glmserve.config.settings import EngineSettings
    from glmserve.engines.llamacpp import models
    from glmserve.engines.llamacpp.engine import LlamaCppEngine

    model = models.packaged(name)
    path = model.path(data_dir)
    assemble_s = 0.0
    if not path.exists():
        started = time.perf_counter()
        models.ensure_packaged(model, data_dir)
        assemble_s = time.perf_counter() - started
    started = time.perf_counter()
    models.verify(model, path)
    verify_s = time.perf_counter() - started
    rss_before = rss_mib()
    started = time.perf_counter()
    cfg = EngineSettings(threads=threads, batch_threads=threads) if threads else EngineSettings()
    engine = LlamaCppEngine(model.name, path, cfg)
    load_s = time.perf_counter() - started
    result: dict[str, Any] = {
        "model": model.name,
        "title": model.title,
        "file_bytes": model.size,
        "assemble_s": assemble_s,
        "verify_s": verify_s,
        "load_s": load_s,
        "rss_before_load_mib": rss_before,
        "rss_mib": rss_mib(),
        "engine": {"parallel": cfg.parallel, "ctx_per_slot": cfg.ctx_per_slot, "threads": cfg.threads},
    }
    result |= asyncio.run(measure_loaded(engine, runs, max_tokens))
    result["rss_peak_mib"] = rss_mib("VmHWM")
    asyncio.run(engine.close())
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--data-dir", type=Path, default=Path.home() / ".local" / "share" / "glmserve")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    parser.add_argument("--threads", type=int, default=0, help="engine threads (0: glmserve's default)")
    parser.add_argument("--tag", default="")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["model                                verify  load   RSS MiB  decode tok/s  TTFT   c=4 tok/s"]
    for r in rows:
        lines.append(
            f"{r['model']:36} {r['verify_s']:5.1f}s {r['load_s']:5.1f}s {r['rss_mib']:8.0f}  "
            f"{r['decode_tok_s']:12.1f}  {r['ttft_s']:4.2f}s {r['aggregate_tok_s_c4']:10.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir = args.data_dir.resolve()
    if args.child:
        print(json.dumps(child(args.child, data_dir, args.runs, args.max_tokens, args.threads)))
        return 0
    from glmserve.engines.llamacpp.models import PACKAGED

    rows = []
    today = dt.date.today().isoformat()
    results = {"date": today, "cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg(), "models": rows}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / (f"models-{today}" + (f"-{args.tag}" if args.tag else "") + ".json")
    for name in PACKAGED:
        command = [sys.executable, __file__, "--child", name, "--data-dir", str(data_dir)]
        command += [
            "--runs",
            str(args.runs),
            "--max-tokens",
            str(args.max_tokens),
            "--threads",
            str(args.threads),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        results["loadavg_end"] = os.getloadavg()  # a shared machine: read the figures beside these
        path.write_text(json.dumps(results, indent=2) + "\n")
    print(table(rows))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
