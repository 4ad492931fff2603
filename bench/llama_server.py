"""llama.cpp's own HTTP server (through xllamacpp) as a process of its own, for the benchmark.

    python bench/llama_server.py --model PATH --port P --resolved OUT.json [--parallel N --ctx N --threads N]

Without ``--parallel``/``--ctx``/``--threads`` the server keeps the defaults of xllamacpp's bare
``CommonParams()`` (one slot); ``--parallel -1`` asks for the ``llama-server`` command line's auto
mode (4 slots, unified KV), which is what glmserve's own defaults amount to. Once listening it
writes the thread counts llama.cpp resolved to ``--resolved`` and then serves until SIGTERM or
SIGINT.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path
from typing import Any


def build_params(args: argparse.Namespace) -> Any:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.port = args.port
    params.hostnames = ["127.0.0.1"]
    params.verbosity = -1
    if args.parallel is not None:
        params.n_parallel = args.parallel
    if args.ctx is not None:
        params.n_ctx = args.ctx
    if args.threads is not None:
        params.cpuparams.n_threads = args.threads
        params.cpuparams_batch.n_threads = args.threads
    return params


def resolved(params: Any, server: Any) -> dict[str, Any]:
    """What the params say after start-up; slots and context are read from /props and /slots."""
    return {
        "listening_address": server.listening_address,
        "threads": params.cpuparams.n_threads,
        "batch_threads": params.cpuparams_batch.n_threads,
        "cache_prompt": params.cache_prompt,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--resolved", type=Path, required=True)
    parser.add_argument("--parallel", type=int)
    parser.add_argument("--ctx", type=int)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()

    import xllamacpp

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    params = build_params(args)
    server = xllamacpp.Server(params)
    partial = args.resolved.with_suffix(".partial")
    partial.write_text(json.dumps(resolved(params, server)))
    partial.replace(args.resolved)  # atomic: the benchmark never reads a half-written file
    while not stop.wait(1.0):
        pass
    del server


if __name__ == "__main__":
    main()
