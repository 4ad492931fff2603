"""The gateway benchmark's contenders: the fake upstream called directly, glmserve, LiteLLM's proxy.

Each is a context manager that starts the server (one worker each), yields where to send chat
requests, and stops it. glmserve runs with a controlled configuration: the caller's
``GLMSERVE_*`` environment is removed, a config file of one upstream model is the only
configuration besides the data directory, the static API key and the log level, and its
response cache and single-flight are off (the fake upstream's answers are not what a gateway
benchmark may cache).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import litellm_proxy
import model_source
from processes import free_port, server_process

GLMSERVE = Path(sys.executable).parent / "glmserve"
GLMSERVE_KEY = "benchbenchbenchbenchbenchbench12.BenchSecret12345"
MODEL = "bench"
NAMES = ("direct", "glmserve", "litellm")
GLMSERVE_KNOBS = {"GLMSERVE_LOG_LEVEL": "warning", "GLMSERVE_CACHE__ENABLED": "false"}


@dataclass(frozen=True)
class Target:
    url: str
    headers: dict[str, str]
    model: str


def _glmserve_config(path: Path, upstream: str) -> Path:
    path.write_text(
        f'[[models]]\nname = "{MODEL}"\n[[models.deployments]]\nkind = "openai"\n'
        f'base_url = "{upstream}"\nmodel = "ok"\nhealth_interval_s = 0\n'
    )
    return path


@contextmanager
def started(name: str, args: argparse.Namespace, upstream: str) -> Iterator[Target]:
    """Start contender ``name`` in front of ``upstream`` (``.../v1``) until the block ends."""
    logs = args.data_dir / "logs"
    if name == "direct":
        yield Target(f"{upstream}/chat/completions", {}, "ok")
        return
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if name == "glmserve":
        config = _glmserve_config(args.data_dir / "gateway.toml", upstream)
        extra = GLMSERVE_KNOBS | {"GLMSERVE_API_KEY": GLMSERVE_KEY}
        env = model_source.glmserve_env(args.data_dir / "glmserve", extra)
        cmd = [str(GLMSERVE), "serve", "--host", "127.0.0.1", "--port", str(port), "--config", str(config)]
        with server_process(cmd, env=env, health_url=f"{base}/health", log_path=logs / "glmserve.log"):
            yield Target(f"{base}/v1/chat/completions", {"authorization": f"Bearer {GLMSERVE_KEY}"}, MODEL)
        return
    cli = litellm_proxy.ensure(args.data_dir / ".venv-litellm", logs / "litellm-install.log")
    config = args.data_dir / "litellm.yaml"
    config.write_text(litellm_proxy.config(upstream, "ok", MODEL))
    env = dict(os.environ) | {"LITELLM_LOG": "ERROR", "LITELLM_MODE": "PRODUCTION"}
    with server_process(
        litellm_proxy.command(cli, config, port),
        env=env,
        timeout_s=180,
        health_url=f"{base}/health/liveliness",
        log_path=logs / "litellm.log",
    ):
        yield Target(
            f"{base}/v1/chat/completions", {"authorization": f"Bearer {litellm_proxy.MASTER_KEY}"}, MODEL
        )
