"""Server subprocesses for the benchmark: a free port, start, wait for health, always stop.

Each server runs in a session of its own, so stopping it signals its whole process group and
nothing it started outlives the benchmark.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx


class StartFailed(RuntimeError):
    """The server exited or never answered its health check."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def exit_status(code: int) -> str:
    """``-4`` as ``SIGILL``: a negative return code is the signal that killed the process."""
    if code >= 0:
        return f"status {code}"
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def wait_healthy(proc: subprocess.Popen[bytes], url: str, timeout_s: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (code := proc.poll()) is not None:
            raise StartFailed(f"exited with {exit_status(code)} before it was healthy:\n{log_tail(log_path)}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(0.25)
    raise StartFailed(f"{url} not healthy after {timeout_s:.0f}s:\n{log_tail(log_path)}")


def stop(proc: subprocess.Popen[bytes], grace_s: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        proc.wait()


@contextmanager
def server_process(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    env: dict[str, str],
    health_url: str,
    log_path: Path,
    timeout_s: float = 300.0,
) -> Iterator[float]:
    """Run ``cmd`` until the block ends; yields the seconds it took to become healthy."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_healthy(proc, health_url, timeout_s, log_path)
            yield time.perf_counter() - start
            if (code := proc.poll()) is not None:  # its requests failed; say why, not only how
                raise StartFailed(f"exited with {exit_status(code)} while serving:\n{log_tail(log_path)}")
        finally:
            stop(proc)
