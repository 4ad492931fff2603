"""The glmserve command sets libgomp's wait policy and spin count before llama.cpp loads."""

from __future__ import annotations

import os
import subprocess
import sys


def run(env: dict[str, str]) -> list[str]:
    code = "import glmserve.cli, os; print(os.environ['OMP_WAIT_POLICY'], os.environ['GOMP_SPINCOUNT'])"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_bounded_active_spin_by_default_and_the_users_values_win() -> None:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    assert run(base) == ["active", "300000"]
    assert run(base | {"OMP_WAIT_POLICY": "passive", "GOMP_SPINCOUNT": "0"}) == ["passive", "0"]


def test_an_idle_server_process_does_not_spin_after_serving() -> None:
    """The reverted default (active, unbounded) kept a core busy after one request: 5 CPU s in 5 s."""
    code = (
        "import glmserve.cli, time, xllamacpp\n"
        "from glmserve.engines.llamacpp.models import ensure_packaged, packaged\n"
        "from glmserve.config.settings import load_settings\n"
        "path = ensure_packaged(packaged('qwen2.5-coder-0.5b-instruct-q4_k_m'), load_settings().data_dir)\n"
        "p = xllamacpp.CommonParams(); p.model.path = str(path); p.n_ctx = 512; p.verbosity = -1\n"
        "p.cpuparams.n_threads = p.cpuparams_batch.n_threads = 2\n"
        "s = xllamacpp.Server(p)\n"
        "body = {'messages': [{'role': 'user', 'content': 'hi'}], 'max_tokens': 8, 'temperature': 0}\n"
        "s.handle_chat_completions(body)\n"
        "t = time.process_time(); time.sleep(2); print(time.process_time() - t)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    idle_cpu_s = float(done.stdout.strip().splitlines()[-1])
    assert idle_cpu_s < 0.5, f"{idle_cpu_s:.2f} CPU s in 2 idle s: llama.cpp's threads are spinning"
