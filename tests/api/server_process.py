"""Run a real `glmserve serve` process for the black-box suite, and its `keys` CLI."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

GLMSERVE = Path(sys.executable).parent / "glmserve"
MODEL_FILE = Path("models") / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
# The first start assembles a 469 MB GGUF into the data dir before loading it.
READY_TIMEOUT_S = 300.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(data_dir: Path, api_key: str | None) -> dict[str, str]:
    """The caller's environment minus any GLMSERVE_* settings, plus this suite's two.

    ``api_key`` None starts the server without a static key (as a fresh install does).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLMSERVE_")}
    env["GLMSERVE_DATA_DIR"] = str(data_dir)
    if api_key is not None:
        env["GLMSERVE_API_KEY"] = api_key
    # Suites that test the engine must reach it: the response cache is on only where a test asks.
    env["GLMSERVE_CACHE__ENABLED"] = "false"
    return env


@dataclass
class GlmServe:
    """A started server; `api_key` is the static key it was given through GLMSERVE_API_KEY.

    Without one (``start(..., api_key=None)``) it is "" until the test sets the key it will use.
    """

    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    api_key: str
    env: dict[str, str]
    log_path: Path

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def paas_url(self) -> str:
        return f"{self.root}/api/paas/v4/"

    @property
    def v1_url(self) -> str:
        return f"{self.root}/v1/"

    @property
    def key_id(self) -> str:
        return self.api_key.split(".", 1)[0]

    @property
    def secret(self) -> str:
        return self.api_key.split(".", 1)[1]

    @property
    def model_path(self) -> Path:
        return self.data_dir / MODEL_FILE

    def log_tail(self, limit: int = 8000) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""
        return text[-limit:]

    def dead_reason(self) -> str | None:
        """None while running; otherwise the exit status and the end of its stderr."""
        rc = self.proc.poll()
        if rc is None:
            return None
        return f"glmserve exited with status {rc}; its stderr ends:\n{self.log_tail()}"

    def health(self) -> dict[str, Any]:
        response = httpx.get(f"{self.root}/health", timeout=10)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `glmserve ARGS` against this server's data dir; fail loudly on a non-zero exit."""
        done = subprocess.run(
            [str(GLMSERVE), *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"glmserve {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done

    def __enter__(self) -> GlmServe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start(
    data_dir: Path,
    log_path: Path,
    api_key: str | None,
    extra_env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
) -> GlmServe:
    """Start `glmserve serve [EXTRA_ARGS]` on a free port and wait until GET /health answers 200."""
    if not GLMSERVE.exists():
        raise FileNotFoundError(f"{GLMSERVE} is missing: install the project (./run setup)")
    port = free_port()
    env = server_env(data_dir, api_key) | (extra_env or {})
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(GLMSERVE), "serve", "--host", "127.0.0.1", "--port", str(port), *(extra_args or [])],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = GlmServe(proc, port, data_dir, api_key or "", env, log_path)
    try:
        _wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: GlmServe) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        reason = server.dead_reason()
        if reason:
            raise RuntimeError(reason)
        try:
            response = httpx.get(f"{server.root}/health", timeout=5)
            if response.status_code == 200:
                return
            last_error = f"HTTP {response.status_code}: {response.text[:200]}"
        except httpx.TransportError as exc:
            last_error = repr(exc)
        time.sleep(0.5)
    raise TimeoutError(
        f"glmserve not ready after {READY_TIMEOUT_S:.0f}s ({last_error}); log ends:\n{server.log_tail()}"
    )


@contextlib.contextmanager
def replica_pair(
    data_dir: Path,
    logs: Path,
    keys: tuple[str, str],
    env: dict[str, str],
    redis_url: str,
    redis_prefix: str,
) -> Iterator[tuple[GlmServe, GlmServe]]:
    """Two servers started side by side with static keys ``keys`` (replicas sharing ``env``).

    On exit both stop and every Redis key under ``redis_prefix`` is deleted.
    """
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        names = zip("ab", keys, strict=True)
        starting = [pool.submit(start, data_dir, logs / f"{name}.log", key, env) for name, key in names]
    started = [f.result() for f in starting if f.exception() is None]
    try:
        for future in starting:
            if (error := future.exception()) is not None:
                raise error
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()
        client = redis.Redis.from_url(redis_url)
        try:
            stale = list(client.scan_iter(f"{redis_prefix}:*"))
            if stale:
                client.delete(*stale)
        finally:
            client.close()
