"""LiteLLM's proxy, in a virtualenv of its own, as a contender of the gateway benchmark.

It never shares glmserve's .venv. The version is pinned to a release published before the
March 2026 PyPI compromise of 1.82.7/1.82.8 (both withdrawn); the proxy only ever talks to the
fake upstream on 127.0.0.1 with a dummy key.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LITELLM = "litellm[proxy]==1.81.16"
MASTER_KEY = "sk-bench-master"


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure(venv: Path, log_path: Path) -> Path:
    """Create ``venv`` with LiteLLM's proxy unless it is already there; returns its ``litellm``."""
    cli = venv / "bin" / "litellm"
    marker = venv / ".installed"
    if cli.exists() and marker.exists() and marker.read_text() == LITELLM:
        return cli
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=log, stderr=log)
        pip = [str(python_of(venv)), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True, stdout=log, stderr=log, timeout=600)
        subprocess.run([*pip, LITELLM], check=True, stdout=log, stderr=log, timeout=1800)
    marker.write_text(LITELLM)
    return cli


def config(
    upstream_url: str, upstream_model: str, public_model: str, extra: dict[str, str] | None = None
) -> str:
    """The proxy's config: ``public_model`` (and each of ``extra``: public -> upstream model)."""
    entries = "".join(
        f"""  - model_name: {public}
    litellm_params:
      model: openai/{upstream}
      api_base: {upstream_url}
      api_key: dummy-upstream-key
"""
        for public, upstream in {public_model: upstream_model, **(extra or {})}.items()
    )
    return f"""model_list:
{entries}litellm_settings:
  drop_params: true
  set_verbose: false
  json_logs: false
general_settings:
  master_key: {MASTER_KEY}
"""


def command(cli: Path, config_path: Path, port: int) -> list[str]:
    return [
        str(cli),
        "--config",
        str(config_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
