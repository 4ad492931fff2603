"""Throw-away Redis, PostgreSQL and HAProxy instances that a fault test may stop and restart.

The machine's own PostgreSQL and Redis are shared (by other suites, other users); stopping them
to test a fault would break whatever else runs. These start private instances on free ports,
from the same Debian binaries, in a temporary directory, and remove them afterwards:

- ``PrivateRedis``: ``redis-server`` without persistence; ``stop()`` / ``start()`` on the same port;
- ``PrivatePostgres``: ``initdb`` + ``pg_ctl`` as the ``postgres`` user (PostgreSQL refuses root),
  trust authentication on 127.0.0.1; ``restart()`` is ``pg_ctl restart -m fast``, the same
  shutdown ``pg_ctlcluster … restart`` performs;
- ``HAProxy``: HTTP load balancer over replicas, with the retry/redispatch settings documented
  in the README's "Failure semantics".

``binary(name)`` finds a program; where one is missing the test is skipped, except under CI
(``CI=true``), where it fails: CI must never go green by skipping them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    if found is None:
        why = f"{name} is not installed (.ci/run installs it with apt-get)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}; required under CI=true", pytrace=False)
        pytest.skip(why)
    return found


def wait_port(port: int, timeout_s: float = 30.0, up: bool = True) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} still {'closed' if up else 'open'} after {timeout_s}s")


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.server = binary("redis-server")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            self.server,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        wait_port(self.port, up=False)

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PrivatePostgres:
    """A cluster of its own in a temporary directory, owned by the ``postgres`` user."""

    def __init__(self) -> None:
        self.port = free_port()
        self.initdb, self.pg_ctl = binary("initdb"), binary("pg_ctl")
        self.dir = Path(tempfile.mkdtemp(prefix="glmserve-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str, timeout: float = 120) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr[-2000:]}")

    def _ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
        self._as_postgres(
            self.pg_ctl, action, "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, *extra
        )

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self._as_postgres(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self._ctl("start")
        wait_port(self.port)

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")
        wait_port(self.port)

    def pause(self) -> None:
        """Stop the server, keeping its data (``resume`` starts it again)."""
        self._as_postgres(self.pg_ctl, "stop", "-D", str(self.data), "-m", "fast", "-w")
        wait_port(self.port, up=False)

    def resume(self) -> None:
        self._ctl("start")
        wait_port(self.port)

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._as_postgres(self.pg_ctl, "stop", "-D", str(self.data), "-m", "immediate", timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


HAPROXY_CONFIG = """\
global
    maxconn 4096
defaults
    mode http
    timeout connect 1s
    timeout client 120s
    timeout server 120s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
    option http-server-close
frontend api
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /readyz
    default-server inter 500ms fall 2 rise 1 observe layer4 error-limit 1 on-error mark-down
{servers}
"""


class HAProxy:
    """HAProxy in front of ``ports``: connection failures are retried on another replica."""

    def __init__(self, ports: list[int], workdir: Path) -> None:
        self.port = free_port()
        self.haproxy = binary("haproxy")
        servers = "\n".join(f"    server r{i} 127.0.0.1:{p} check" for i, p in enumerate(ports))
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(HAPROXY_CONFIG.format(port=self.port, servers=servers), encoding="utf-8")
        self.log = workdir / "haproxy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HAProxy:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [self.haproxy, "-db", "-f", str(self.config)], stdout=log, stderr=log
            )
        wait_port(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


@contextlib.contextmanager
def running(*managers: contextlib.AbstractContextManager[object]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for manager in managers:
            stack.enter_context(manager)
        yield
