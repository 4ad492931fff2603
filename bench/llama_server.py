"""llama.cpp's own HTTP server (through xllamacpp) as a process of its own, for the benchmark.

    python bench/llama_server.py --model PATH --port P --resolved OUT.json [--parallel N --ctx N --threads N]

Without ``--parallel``/``--ctx``/``--threads`` the server keeps llama.cpp's defaults, except that
``n_parallel`` is -1 (auto), as the ``llama-server`` command line sets it; xllamacpp's bare
``CommonParams()`` would say 1. Once listening it writes the thread counts llama.cpp
resolved to ``--resolved`` and then serves until SIGTERM or SIGINT.
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
    params.n_parallel = args.parallel if args.parallel is not None else -1
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
    args.resolved.write_text(json.dumps(resolved(params, server)))
    while not stop.wait(1.0):
        pass
    del server


if __name__ == "__main__":
    main()
