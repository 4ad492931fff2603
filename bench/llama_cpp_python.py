"""A virtualenv of its own for llama-cpp-python's OpenAI server, built once from source by pip.

It lives apart from glmserve's .venv so that its pinned llama.cpp and dependencies never mix with
xllamacpp's. The build compiles llama.cpp (10-15 minutes on two cores); its log is kept. It is
compiled for the instruction set of the xllamacpp wheel (AVX2, FMA, F16C, BMI2), not for
``-march=native``: a native build on this VM used instructions its CPU advertises but does not
run (the server died of SIGILL at its first generation), and equal instruction sets keep the
comparison fair. pip's wheel cache is bypassed, so an earlier native wheel is never reused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "llama-cpp-python[server]==0.3.36"
VENV = Path(__file__).resolve().parent / ".venv-llama-cpp-python-avx2"
CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"


class BuildFailed(RuntimeError):
    """The virtualenv could not be created or the package did not build."""


@dataclass(frozen=True)
class Install:
    python: Path
    version: str
    system_info: str  # the CPU features its llama.cpp was compiled for
    build_s: float | None  # None: it was already built


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def probe(venv: Path) -> tuple[str, str] | None:
    """(version, system info) of the installed package; ``None`` when it is missing or broken."""
    python = python_of(venv)
    if not python.exists():
        return None
    code = (
        "import llama_cpp, llama_cpp.server; print(llama_cpp.__version__); "
        "print(llama_cpp.llama_print_system_info().decode().strip())"
    )
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    lines = done.stdout.splitlines()
    return (lines[0], " ".join(lines[1:])) if done.returncode == 0 and lines else None


def ensure(log_path: Path, venv: Path = VENV, timeout_s: float = 3600) -> Install:
    """The installed server, building it first when missing; raises ``BuildFailed``."""
    if found := probe(venv):
        return Install(python_of(venv), *found, None)
    start = time.perf_counter()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2), "CMAKE_ARGS": CMAKE_ARGS}
    with log_path.open("w") as log:
        steps = [[sys.executable, "-m", "venv", str(venv)]] if not python_of(venv).exists() else []
        pip = [str(python_of(venv)), "-m", "pip", "install", "--no-input", "--no-cache-dir"]
        steps.append([*pip, PACKAGE])
        for cmd in steps:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            try:
                done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout_s)
            except subprocess.TimeoutExpired as exc:
                raise BuildFailed(f"`{' '.join(cmd)}` ran past {timeout_s:.0f}s; log: {log_path}") from exc
            if done.returncode != 0:
                raise BuildFailed(f"`{' '.join(cmd)}` exited {done.returncode}; log: {log_path}")
    found = probe(venv)
    if found is None:
        raise BuildFailed(f"llama_cpp.server does not import after the install; log: {log_path}")
    return Install(python_of(venv), *found, time.perf_counter() - start)
