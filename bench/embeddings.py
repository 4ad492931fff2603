"""Embeddings throughput: glmserve against the same GGUF in llama.cpp's own server, in one run.

    python bench/embeddings.py [--model embedding-2|embedding-3] [--threads N] [--quick]

Both servers run the same GGUF with the same llama.cpp settings (embedding mode, 2 slots, a batch
of the model's per-input limit, N threads; ``bench/embedding_server.py`` mirrors glmserve's
engine), one at a time on an otherwise idle machine, each a process of its own.

Workload, fixed: batches of 1, 16 and 64 inputs, each input a sentence of 12–20 words drawn with
a fixed seed; one client sends one request at a time (latency-bound throughput, the case where
glmserve's own per-request work shows most). glmserve is asked through its OpenAI route with
``encoding_format: float`` and a stored key with limits (``--key static``: the static key), so
each request's key check, lease and usage row are in its figure; llama.cpp through its
``/v1/embeddings``. A 1-minute load average above 0.5 per CPU at the start makes the run INVALID.

Statistic, fixed before any run: ``ROUNDS`` rounds alternate the two servers (A B A B …, so
drift hits both); a round sends ``REQUESTS[batch]`` requests after ``WARMUP`` unrecorded ones and
measures inputs/s and tokens/s (tokens from each answer's ``usage.prompt_tokens``) over its wall
time. A server's figure is the median over its rounds; the ratio glmserve / llama.cpp of the
medians is the verdict, target ≥ 0.9 at each batch size. ``--quick`` (2 rounds, few requests) is a
smoke run only: its figures are not a result.

Output: ``bench/results/embeddings-<date>-<model>.json`` (settings, every round, medians, ratios).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import targets
from processes import free_port, server_process

BATCHES = (1, 16, 64)
ROUNDS = 5
WARMUP = 3
REQUESTS = {1: 200, 16: 30, 64: 8}  # about 200–500 inputs per round and batch size
QUICK = {"rounds": 2, "requests": {1: 20, 16: 4, 64: 2}}
TARGET = 0.9
STATIC_KEY = "bench.key"
STORED_KEY = {"name": "bench", "rpm": 10_000_000, "tpm": 2**31 - 1, "concurrency": 1000}
MODELS = {"embedding-2": ("all-minilm-l6-v2", 512), "embedding-3": ("embeddinggemma-300m", 2048)}
WORDS = [
    *("the", "a", "model", "serves", "every", "request", "quickly", "while", "clients", "wait", "for"),
    *("vectors", "of", "text", "about", "cats", "rain", "tea", "markets", "music", "rivers", "cities"),
    *("trains", "code", "gardens", "history", "science", "weather", "football"),
]
RESULTS = Path(__file__).resolve().parent / "results"


def sentences(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 20))).capitalize() + "."
        for _ in range(count)
    ]


def measure(
    http: httpx.Client, url: str, model: str, batch: int, requests: int, seed: int
) -> dict[str, float]:
    texts = sentences(batch * (requests + WARMUP), seed)
    bodies = [
        {"model": model, "input": texts[i * batch : (i + 1) * batch], "encoding_format": "float"}
        for i in range(requests + WARMUP)
    ]
    for body in bodies[:WARMUP]:
        http.post(url, json=body).raise_for_status()
    tokens, started = 0, time.perf_counter()
    for body in bodies[WARMUP:]:
        answer = http.post(url, json=body)
        answer.raise_for_status()
        payload = answer.json()
        assert len(payload["data"]) == batch
        tokens += int(payload["usage"]["prompt_tokens"])
    wall = time.perf_counter() - started
    return {"inputs_per_s": batch * requests / wall, "tokens_per_s": tokens / wall, "wall_s": wall}


def commands(args: argparse.Namespace, tmp: Path, target: str, port: int) -> tuple[list[str], dict[str, str]]:
    from glmserve.engines.llamacpp.packaged_embeddings import default_cache, packaged

    name, per_input = MODELS[args.model]
    threads = str(args.threads)
    if target == "glmserve":
        config = tmp / "embeddings.toml"
        config.write_text(f'[[models]]\nname = "{args.model}"\nkind = "embedding"\npackaged = "{name}"\n')
        glmserve = Path(sys.executable).parent / "glmserve"
        cmd = [str(glmserve), "serve", "--host", "127.0.0.1", "--port", str(port), "--config", str(config)]
        env = {"GLMSERVE_DATA_DIR": str(tmp / "data"), "GLMSERVE_API_KEY": STATIC_KEY}
        env |= {"GLMSERVE_EMBEDDINGS__THREADS": threads, "GLMSERVE_ACCESS_LOG": "false"}
        return cmd, env
    server = Path(__file__).with_name("embedding_server.py")
    gguf = default_cache() / packaged(name).file
    flags = ["--port", str(port), "--parallel", "2", "--batch", str(per_input), "--threads", threads]
    return [sys.executable, str(server), "--model", str(gguf), *flags], {}


def one_round(
    args: argparse.Namespace, tmp: Path, target: str, r: int, requests: dict[int, int]
) -> dict[int, Any]:
    port = free_port()
    cmd, env = commands(args, tmp, target, port)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("GLMSERVE_")}
    root = f"http://127.0.0.1:{port}"
    figures = {}
    log = tmp / f"{target}.log"
    with (
        server_process(cmd, env=base_env | env, health_url=f"{root}/health", log_path=log),
        httpx.Client(base_url=root, headers={"Authorization": f"Bearer {STATIC_KEY}"}, timeout=300) as http,
    ):
        if target == "glmserve" and args.key == "stored":
            # The path users take: a stored key with limits, its usage rows committed per request.
            made = http.post("/admin/keys", json=STORED_KEY)
            made.raise_for_status()
            http.headers["Authorization"] = f"Bearer {made.json()['key']}"
        for batch in BATCHES:
            figure = measure(http, "/v1/embeddings", args.model, batch, requests[batch], 1000 * r + batch)
            figures[batch] = figure
            rate, tokens = figure["inputs_per_s"], figure["tokens_per_s"]
            print(
                f"round {r} {target:9} batch {batch:2}: {rate:8.1f} inputs/s {tokens:9.1f} tokens/s",
                flush=True,
            )
    return figures


def run(args: argparse.Namespace) -> dict[str, Any]:
    rounds = QUICK["rounds"] if args.quick else ROUNDS
    requests: dict[int, int] = QUICK["requests"] if args.quick else REQUESTS  # type: ignore[assignment]
    figures: dict[str, dict[int, list[dict[str, float]]]] = {"glmserve": {}, "llama.cpp": {}}
    with tempfile.TemporaryDirectory(prefix="bench-embeddings-") as tmp_name:
        for r in range(rounds):
            for target in ("glmserve", "llama.cpp") if r % 2 == 0 else ("llama.cpp", "glmserve"):
                for batch, figure in one_round(args, Path(tmp_name), target, r, requests).items():
                    figures[target].setdefault(batch, []).append(figure)
    return summarize(args, figures, rounds, requests)


def summarize(
    args: argparse.Namespace,
    figures: dict[str, dict[int, list[dict[str, float]]]],
    rounds: int,
    requests: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {"model": args.model, "threads": args.threads, "rounds": rounds, "warmup": WARMUP}
    out |= {"requests": requests, "quick": args.quick, "target": TARGET, "statistic": "median over rounds"}
    out["batches"] = {}
    for batch in BATCHES:
        medians = {
            target: {
                key: statistics.median(f[key] for f in figures[target][batch])
                for key in ("inputs_per_s", "tokens_per_s")
            }
            for target in figures
        }
        ratio = medians["glmserve"]["inputs_per_s"] / medians["llama.cpp"]["inputs_per_s"]
        rows = {target: figures[target][batch] for target in figures}
        out["batches"][str(batch)] = {
            "medians": medians,
            "ratio": round(ratio, 4),
            "pass": ratio >= TARGET,
            "rounds": rows,
        }
        print(f"batch {batch:2}: glmserve/llama.cpp = {ratio:.4f} {'PASS' if ratio >= TARGET else 'FAIL'}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=sorted(MODELS), default="embedding-2")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--quick", action="store_true", help="a smoke run: figures are not a result")
    parser.add_argument(
        "--key", choices=("stored", "static"), default="stored",
        help="glmserve is called with a stored key with limits (default) or the static key",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, help="default: bench/results/embeddings-<date>[-quick].json")
    args = parser.parse_args()
    cpus, load = os.cpu_count() or 1, os.getloadavg()[0]
    invalid = targets.busy(load, cpus)
    if invalid:
        print(f"INVALID RUN: 1-minute load average {load:.2f} on {cpus} CPUs at the start", flush=True)
    cpu_before = targets.cpu_times()
    result = run(args)
    steal, stolen = targets.steal_since(cpu_before)
    invalid = invalid or stolen
    result |= {"key": args.key, "loadavg_start": load, "steal_share": round(steal, 4), "invalid": invalid}
    if invalid:
        print("RUN INVALID: the verdicts above do not count")
    result["date"] = datetime.date.today().isoformat()
    stem = f"embeddings-{result['date']}-{args.model}{'-quick' if args.quick else ''}"
    out = args.out or RESULTS / f"{stem}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
