"""What the reliability scenarios run on: a fake upstream in its own process (killable), glmserve
gateways in front of it, stored keys, and the usage rows a database kept.

Shared by ``bench/reliability.py`` (full sizes) and ``tests/api/test_reliability_*.py``
(CI sizes), so the suite and its tests measure the same thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from . import server_process
from .accounts import create_key
from .credentials import new_zhipu_key
from .private_services import free_port, wait_port
from .server_process import GlmServe
from .upstream_gateway import model_table

FAKE = Path(__file__).resolve().parent / "fake_upstream.py"
FAST = {"connect": 1.0, "first_byte": 5.0, "between_chunks": 5.0}
STALL_FIRST_BYTE = 1.5
PACE = "paced:16:20"  # 16 content chunks, 20 ms apart: an answer takes about 0.35 s
QUIET = {"GLMSERVE_LOG_LEVEL": "warning", "GLMSERVE_ACCESS_LOG": "false"}


class FakeProcess:
    """``fake_upstream.py`` as a process of its own on a fixed port: it can be killed and restarted."""

    def __init__(self, log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> float:
        """Start; returns the moment (monotonic) it accepts connections."""
        for _ in range(3):
            with self.log.open("ab") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, str(FAKE), "--port", str(self.port)], stdout=log, stderr=log
                )
            deadline = time.monotonic() + 30
            while self.proc.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5):
                    return time.monotonic()
                time.sleep(0.02)
            self.kill()
        tail = self.log.read_text(errors="replace")[-1500:]
        raise RuntimeError(f"the fake upstream did not listen on {self.port}:\n{tail}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        wait_port(self.port, up=False)

    def control(self, model: str, behaviour: str | None) -> None:
        body = {"model": model, "behaviour": behaviour}
        httpx.post(f"http://127.0.0.1:{self.port}/_control/default", json=body, timeout=5).raise_for_status()

    def counts(self) -> dict[str, int]:
        response = httpx.get(f"http://127.0.0.1:{self.port}/_control/counts", timeout=5)
        counts: dict[str, int] = response.json()["counts"]
        return counts

    def __enter__(self) -> FakeProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def upstream(fake: FakeProcess, model: str, **extra: Any) -> dict[str, Any]:
    """One upstream deployment on ``fake`` whose behaviour is ``model`` (see fake_upstream)."""
    return {
        "kind": "openai",
        "base_url": fake.base_url,
        "model": model,
        "timeouts": FAST,
        "health_interval_s": 0,
    } | extra


def gateway_models(fake: FakeProcess) -> dict[str, dict[str, Any]]:
    return {
        # A saturated gateway queues: under load, a slow first event is latency, not a timeout.
        "rel": {
            "deployments": [
                upstream(fake, PACE, timeouts=FAST | {"first_byte": 30.0, "between_chunks": 30.0})
            ]
        },
        "rel-flaky": {"deployments": [upstream(fake, "flaky:0.2")]},
        "rel-stall": {
            "deployments": [upstream(fake, "stall-switch", timeouts=FAST | {"first_byte": STALL_FIRST_BYTE})]
        },
        "amp-on": {"deployments": [upstream(fake, "amp-on")]},
        "amp-off": {"breaker": {"failures": 0}, "deployments": [upstream(fake, "amp-off")]},
    }


def start_gateway(
    workdir: Path, fake: FakeProcess, env: dict[str, str] | None = None, data_dir: Path | None = None
) -> GlmServe:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "gateway.toml"
    config.write_text(model_table(gateway_models(fake)), encoding="utf-8")
    liveness = {"GLMSERVE_LIVENESS_PORT": str(free_port())}  # /livez from a thread (http.liveness_port)
    return server_process.start(
        data_dir or workdir / "data",
        workdir / f"gateway-{time.monotonic_ns()}.log",
        new_zhipu_key(),
        QUIET | liveness | (env or {}),
        ["--config", str(config)],
    )


def livez_port_url(server: GlmServe) -> str:
    """The thread-served ``/livez`` of a gateway ``start_gateway`` started."""
    return f"http://127.0.0.1:{server.env['GLMSERVE_LIVENESS_PORT']}/livez"


def chat_url(server: GlmServe) -> str:
    return f"{server.root}/v1/chat/completions"


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def body(model: str = "rel", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "say hello"}], **extra}


def limited_key(server: GlmServe, rpm: int = 1_000_000, name: str = "reliability") -> str:
    """A stored key with a limit, so its requests go through the limiter (and the database)."""
    key, _ = create_key(server, name=name, rpm=rpm)
    return key


def metric(server: GlmServe, name: str) -> float:
    """The sum of a metric's samples in ``/metrics``."""
    text = httpx.get(f"{server.root}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def usage_request_ids(database_url: str) -> set[str]:
    """The request ids of every usage row in a SQLite file or a PostgreSQL database."""
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return {row[0] for row in conn.execute("SELECT request_id FROM usage_events")}

    async def fetch() -> set[str]:
        url, _, query = database_url.partition("?")
        conn = await asyncpg.connect(url, timeout=10)
        try:
            if query.startswith("search_path="):
                await conn.execute(f'SET search_path TO "{query.split("=", 1)[1]}"')
            return {r[0] for r in await conn.fetch("SELECT request_id FROM usage_events")}
        finally:
            await conn.close()

    return asyncio.run(fetch())


@contextlib.contextmanager
def gateway(workdir: Path, fake: FakeProcess, env: dict[str, str] | None = None) -> Iterator[GlmServe]:
    with start_gateway(workdir, fake, env) as server:
        yield server
