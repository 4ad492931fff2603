"""The servers compared, one launcher each, in a registry keyed by name.

A launcher is a context manager: it starts its server (a subprocess, or xllamacpp in this process),
yields a ``Running`` whose transport reaches it and whose ``info`` records the settings it really
ran with, and stops it when the block ends, whatever happened inside.

glmserve runs with a controlled configuration: the caller's ``GLMSERVE_*`` environment is
removed and only the settings of ``glmserve_knobs`` plus the data directory and API key are set;
its response cache and single-flight are off (no row here measures them), which its ``/health``
must confirm, and its log must name the GGUF the other contenders load.

llama.cpp's server runs three ways: sized like glmserve (the like-for-like rows), at the defaults
of the ``llama-server -m MODEL`` command line (``llama_server.py`` says which llama.cpp build),
and on xllamacpp's bare ``CommonParams()`` (one slot), an extra row without a verdict.
"""

from __future__ import annotations

import gc
import json
import os
import secrets
import string
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import llama_cpp_python
import model_source
from processes import StartFailed, free_port, server_process
from transports import DirectTransport, HttpTransport, Transport

HERE = Path(__file__).resolve().parent


class Skipped(Exception):
    """The contender cannot run here; the message says why."""


@dataclass(frozen=True)
class Setup:
    model: Path
    data_dir: Path
    log_dir: Path
    threads: int
    parallel: int
    ctx_per_slot: int
    skip_llama_cpp_python: bool
    served_model: str = "glm-4.6"  # the public name glmserve is asked for; it serves ``model``
    env: dict[str, str] = field(default_factory=dict)  # further glmserve settings a benchmark needs


@dataclass
class Running:
    transport: Transport
    info: dict[str, Any]
    base_url: str = ""  # glmserve only: its root URL and API key, for the routes beyond chat
    api_key: str = ""


Launch = Callable[[Setup], AbstractContextManager[Running]]


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    launch: Launch
    full_sweep: bool  # False: only the concurrency its ratio needs, and no conversation


CONTENDERS: dict[str, Contender] = {}


def contender(key: str, label: str, *, full_sweep: bool = True) -> Callable[[Launch], Launch]:
    def register(launch: Launch) -> Launch:
        CONTENDERS[key] = Contender(key, label, launch, full_sweep)
        return launch

    return register


def _api_key() -> str:
    alnum = string.ascii_letters + string.digits
    return f"{secrets.token_hex(16)}.{''.join(secrets.choice(alnum) for _ in range(16))}"


def glmserve_knobs(setup: Setup) -> dict[str, str]:
    """Every glmserve setting the benchmark sets (besides the data directory and the API key)."""
    return {
        "GLMSERVE_ENGINE__PARALLEL": str(setup.parallel),
        "GLMSERVE_ENGINE__CTX_PER_SLOT": str(setup.ctx_per_slot),
        "GLMSERVE_ENGINE__THREADS": str(setup.threads),
        "GLMSERVE_ENGINE__BATCH_THREADS": str(setup.threads),
        "GLMSERVE_CACHE__ENABLED": "false",  # response cache and single-flight off
        **setup.env,
    }


def _checked_glmserve(base: str, log: Path, setup: Setup) -> dict[str, Any]:
    """What the running glmserve reports; refuses a cache that is on or a different GGUF."""
    try:
        cache = httpx.get(f"{base}/health", timeout=10).json().get("cache", {})
    except (httpx.HTTPError, ValueError) as exc:
        raise StartFailed(f"GET /health: {exc}") from exc
    if cache.get("enabled") is not False:
        raise StartFailed(f"glmserve's response cache is not off: {cache}")
    loaded = model_source.loaded_by(log)
    if loaded and setup.model.resolve() not in loaded:
        raise StartFailed(f"glmserve loaded {[str(p) for p in loaded]}, the other contenders {setup.model}")
    return {"health_cache": cache, "loaded_gguf": [str(p) for p in loaded] or "not in the log"}


@contender("glmserve", "glmserve (HTTP)")
@contextmanager
def glmserve(setup: Setup) -> Iterator[Running]:
    port, key = free_port(), _api_key()
    knobs = glmserve_knobs(setup)
    env = model_source.glmserve_env(setup.data_dir, knobs | {"GLMSERVE_API_KEY": key})
    cmd: list[str | Path] = [
        Path(sys.executable).parent / "glmserve",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    base = f"http://127.0.0.1:{port}"
    log = setup.log_dir / "glmserve.log"
    with server_process(cmd, env=env, health_url=f"{base}/health", log_path=log) as startup_s:
        info = {"startup_s": startup_s, "model": setup.served_model, "env": knobs, "log": str(log)}
        info |= _checked_glmserve(base, log, setup)
        transport = HttpTransport(base, model=setup.served_model, api_key=key)
        try:
            yield Running(transport, info, base, key)
        finally:
            transport.close()


def _llama_server(setup: Setup, name: str, mode: str) -> AbstractContextManager[Running]:
    """``mode``: ``sized`` (glmserve's slots, context and threads), ``cli`` (the defaults of
    ``llama-server -m MODEL``) or ``library`` (xllamacpp's bare ``CommonParams()``)."""

    @contextmanager
    def run() -> Iterator[Running]:
        port = free_port()
        resolved = setup.log_dir / f"{name}.resolved.json"
        cmd: list[str | Path] = [sys.executable, HERE / "llama_server.py", "--model", setup.model]
        cmd += ["--port", str(port), "--resolved", resolved]
        if mode == "sized":
            ctx = setup.parallel * setup.ctx_per_slot
            cmd += ["--parallel", str(setup.parallel), "--ctx", str(ctx), "--threads", str(setup.threads)]
        elif mode == "library":
            cmd += ["--library-defaults"]
        base = f"http://127.0.0.1:{port}"
        log = setup.log_dir / f"{name}.log"
        with server_process(cmd, env=dict(os.environ), health_url=f"{base}/health", log_path=log) as startup:
            info = {"startup_s": startup, "mode": mode, "log": str(log)}
            info |= _resolved(resolved) | _slots(base)
            transport = HttpTransport(base, model="default")
            try:
                yield Running(transport, info)
            finally:
                transport.close()

    return run()


def _resolved(path: Path, timeout_s: float = 10.0) -> dict[str, Any]:
    """The settings the server process wrote just after it started listening."""
    deadline = time.monotonic() + timeout_s
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        return dict(json.loads(path.read_text())) if path.exists() else {}
    except ValueError as exc:  # informational only: never fail the contender over it
        return {"resolved_error": str(exc)}


def _slots(base: str) -> dict[str, Any]:
    """Slot count and per-slot context as llama.cpp resolved them (auto settings included)."""
    try:
        props = httpx.get(f"{base}/props", timeout=10).json()
        slots = httpx.get(f"{base}/slots", timeout=10).json()
    except (httpx.HTTPError, ValueError) as exc:
        return {"slots_error": str(exc)}
    return {"total_slots": props.get("total_slots"), "slot_n_ctx": [s.get("n_ctx") for s in slots]}


@contender("llama-server", "llama.cpp server")
def llama_server(setup: Setup) -> AbstractContextManager[Running]:
    return _llama_server(setup, "llama-server", "sized")


@contender("llama-server-default", "llama.cpp server, CLI defaults", full_sweep=False)
def llama_server_default(setup: Setup) -> AbstractContextManager[Running]:
    return _llama_server(setup, "llama-server-default", "cli")


@contender("llama-server-1slot", "llama.cpp server, 1 slot (extra)", full_sweep=False)
def llama_server_1slot(setup: Setup) -> AbstractContextManager[Running]:
    return _llama_server(setup, "llama-server-1slot", "library")


@contender("xllamacpp-direct", "xllamacpp in-process")
@contextmanager
def xllamacpp_direct(setup: Setup) -> Iterator[Running]:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(setup.model)
    params.n_parallel = setup.parallel
    params.n_ctx = setup.parallel * setup.ctx_per_slot
    params.cpuparams.n_threads = setup.threads
    params.cpuparams_batch.n_threads = setup.threads
    params.verbosity = -1
    params.warmup = True
    start = time.perf_counter()
    server = xllamacpp.Server(params)
    transport = DirectTransport(server)
    info = {"startup_s": time.perf_counter() - start, "n_parallel": setup.parallel, "n_ctx": params.n_ctx}
    try:
        yield Running(transport, info)
    finally:
        transport.close()
        del server
        gc.collect()


@contender("llama-cpp-python", "llama-cpp-python server")
@contextmanager
def llama_cpp_python_server(setup: Setup) -> Iterator[Running]:
    if setup.skip_llama_cpp_python:
        raise Skipped("skipped: --skip-llama-cpp-python")
    build_log = setup.log_dir / "llama-cpp-python-build.log"
    try:
        install = llama_cpp_python.ensure(build_log)
    except llama_cpp_python.BuildFailed as exc:
        raise Skipped(f"build failed: {exc}") from exc
    port, threads = free_port(), str(setup.threads)
    cmd: list[str | Path] = [install.python, "-m", "llama_cpp.server", "--model", setup.model]
    cmd += ["--n_threads", threads, "--n_threads_batch", threads, "--n_ctx", str(setup.ctx_per_slot)]
    # Queue concurrent requests instead of letting each new one cut the stream in progress.
    cmd += ["--interrupt_requests", "False", "--host", "127.0.0.1", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    log = setup.log_dir / "llama-cpp-python.log"
    with server_process(cmd, env=dict(os.environ), health_url=f"{base}/v1/models", log_path=log) as startup:
        transport = HttpTransport(base, model=str(setup.model))
        info = {"startup_s": startup, "version": install.version, "system_info": install.system_info}
        info |= {"build_s": install.build_s, "log": str(log)}
        try:
            yield Running(transport, info)
        finally:
            transport.close()
