"""The glmserve command sets OpenMP's wait policy before llama.cpp loads (the README's measurement)."""

from __future__ import annotations

import os
import subprocess
import sys


def run(env: dict[str, str]) -> str:
    code = "import glmserve.cli, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_active_by_default_and_the_users_value_wins() -> None:
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert run(base) == "active"
    assert run(base | {"OMP_WAIT_POLICY": "passive"}) == "passive"
