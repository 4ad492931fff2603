"""llama.cpp's own HTTP server (through xllamacpp) as a process of its own, for the benchmark.

    python bench/llama_server.py --model PATH --port P --resolved OUT.json
        [--parallel N --ctx N --threads N | --library-defaults]

Without flags it runs with the defaults of ``llama-server -m PATH``, the command a user types.
In the llama.cpp that xllamacpp wraps (xllamacpp's version is ``YEAR.MONTH.BUILD``, BUILD being
llama.cpp's build number: 2026.10.11549 is llama.cpp b11549), those are the ``common_params``
struct defaults that ``xllamacpp.CommonParams()`` mirrors, plus the one per-example default
``common_params_parser_init`` sets for the server (``common/arg.cpp``: ``params.n_parallel = -1;
// auto by default``). The server resolves the auto slot count (``tools/server/server.cpp``, which
xllamacpp's ``Server`` repeats): 4 slots and one unified KV cache, ``n_ctx`` 0 = the model's
training context (llama.cpp may shrink it to fit memory), threads -1 = llama.cpp's count of
math cores. Only the port, the host and the log verbosity (silenced, as for every contender)
differ. ``--library-defaults`` keeps ``CommonParams()`` as it is (``n_parallel`` 1: one slot),
which no ``llama-server`` command line gives. An explicit ``--parallel N`` splits the context
into N slots of ``--ctx / N`` each, as ``llama-server -np N`` does (and as glmserve does). Once
listening it writes what llama.cpp resolved to ``--resolved`` and serves until SIGTERM or SIGINT.
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
    if not args.library_defaults:
        params.n_parallel = -1  # llama-server's command-line default: auto (4 slots, unified KV)
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
        "n_parallel_requested": params.n_parallel,  # -1: auto; the slots it gave are in /props
        "n_ctx_requested": params.n_ctx,  # 0: the model's; the context per slot is in /slots
        "llama_cpp_build": llama_cpp_build(),
    }


def llama_cpp_build() -> str:
    """llama.cpp's build tag behind the installed xllamacpp (its version is YEAR.MONTH.BUILD)."""
    import importlib.metadata

    version = importlib.metadata.version("xllamacpp")
    build = version.split(".")[-1]
    return f"b{build}" if build.isdigit() else f"unknown (xllamacpp {version})"


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
    parser.add_argument(
        "--library-defaults", action="store_true", help="xllamacpp's bare CommonParams() (one slot)"
    )
    args = parser.parse_args()
    if args.library_defaults and (args.parallel, args.ctx, args.threads) != (None, None, None):
        parser.error("--library-defaults takes no --parallel, --ctx or --threads")

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
