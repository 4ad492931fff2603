"""llama.cpp's own HTTP server in embedding mode (through xllamacpp), as a process of its own.

    python bench/embedding_server.py --model GGUF --port P --parallel N --batch T --threads N

The same knobs glmserve's embedding engine sets (``engines/llamacpp/embedder.py``): embedding
mode, ``--parallel`` slots, a batch (and micro-batch) of ``--batch`` tokens, a context of
``parallel × batch``, a unified KV cache. Serves ``POST /v1/embeddings`` until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import threading


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for flag in ("--port", "--parallel", "--batch", "--threads"):
        parser.add_argument(flag, type=int, required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.port, params.hostnames = args.port, ["127.0.0.1"]
    params.embedding = True
    params.n_parallel = args.parallel
    params.n_batch = params.n_ubatch = args.batch
    params.n_ctx = args.parallel * args.batch
    params.kv_unified = True
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = args.threads
    params.verbosity = -1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = xllamacpp.Server(params)
    while not stop.wait(1.0):
        pass
    del server


if __name__ == "__main__":
    main()
