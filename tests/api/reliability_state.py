"""Reliability scenarios of shared state: Redis stopped, PostgreSQL restarted, glmserve killed
(``kill -9``) in cycles, and two replicas behind HAProxy with one killed. Like
``reliability_scenarios``, each returns a ``Verdict``.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

from . import server_process
from .credentials import new_zhipu_key
from .load_gen import LoadResult, one
from .private_services import HAProxy, PrivatePostgres, PrivateRedis
from .reliability_rig import (
    QUIET,
    FakeProcess,
    auth,
    body,
    gateway_models,
    limited_key,
    start_gateway,
    usage_request_ids,
)
from .reliability_scenarios import Verdict, load_with
from .server_process import GlmServe
from .upstream_gateway import model_table


def redis_stop(workdir: Path, fake: FakeProcess, mode: str, concurrency: int, seconds: float) -> Verdict:
    """Redis is stopped for a third of the run, then started again; limits fail ``mode``."""
    with PrivateRedis() as redis:
        env = {"GLMSERVE_REDIS_URL": redis.url, "GLMSERVE_LIMITS__REDIS_FAILURE": mode}
        with start_gateway(workdir / f"redis-{mode}", fake, env) as server:
            key = limited_key(server)
            result, ran = load_with(
                f"{server.root}/v1/chat/completions", auth(key), body("rel"), concurrency, seconds,
                [(seconds * 0.3, redis.stop), (seconds * 0.65, redis.start)],
            )  # fmt: skip
    down = result.between(ran["stop"] + 0.2, ran["start"])
    after = result.between(ran["start"] + 1.5, float("inf"))
    figures = {"while_down": result.summary(down), "after": result.summary(after)}
    if mode == "open":
        passed = figures["while_down"]["success"] == 1.0 and figures["after"]["success"] == 1.0
        target = "fail open: every request succeeds while Redis is down, and after"
    else:
        refused = [o for o in down if not o.ok]
        passed = (
            bool(refused)
            and all(o.cause == "http_503" and o.retry_after for o in refused)
            and figures["after"]["success"] == 1.0
        )
        target = "fail closed: 503 + Retry-After while Redis is down; every request succeeds after"
    return Verdict(f"fault: Redis stopped (limits fail {mode})", target, passed, figures)


SYSTEM_RESTART = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main restart"


class SystemPostgres:
    """The machine's own cluster, restarted with Debian's ``pg_ctlcluster`` (bench ``--system-postgres``):
    every other user of it sees the restart too."""

    def __init__(self, url: str) -> None:
        self.url = url

    def restart(self) -> None:
        subprocess.run(["sh", "-c", SYSTEM_RESTART], check=True, capture_output=True, timeout=120)

    def __enter__(self) -> SystemPostgres:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def postgres_restart(
    workdir: Path, fake: FakeProcess, concurrency: int, seconds: float, system_url: str | None = None
) -> Verdict:
    """PostgreSQL restarted mid-load: a private cluster, or (``system_url``) the machine's own."""
    cluster: PrivatePostgres | SystemPostgres = (
        SystemPostgres(system_url) if system_url else PrivatePostgres()
    )
    with cluster as pg:
        env = {"GLMSERVE_DATABASE_URL": pg.url}
        with start_gateway(workdir / "pg-restart", fake, env) as server:
            key = limited_key(server)
            result, ran = load_with(
                f"{server.root}/v1/chat/completions", auth(key), body("rel"), concurrency, seconds,
                [(seconds * 0.4, pg.restart)],
            )  # fmt: skip
            time.sleep(1.0)
        rows = usage_request_ids(pg.url)
    lost = result.completed - rows
    around = result.between(ran["restart"] - 2.0, ran["restart"] + 2.0)
    figures = {"all": result.summary(), "around_restart": result.summary(around), "lost_rows": len(lost)}
    figures["cluster"] = "system (pg_ctlcluster)" if system_url else "private (pg_ctl restart -m fast)"
    passed = not lost and (figures["all"]["success"] or 0) >= 0.99
    target = "≥ 99% succeed through the restart; every completion has its usage row"
    return Verdict("fault: PostgreSQL restarted", target, passed, figures)


async def _until_killed(
    url: str, headers: dict[str, str], concurrency: int, server: GlmServe, after: int
) -> tuple[LoadResult, int]:
    """Load until ``after`` completions, then ``kill -9`` the server; the load ends with it."""
    result = LoadResult()
    stop = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:

        async def worker() -> None:
            while time.monotonic() < stop and server.proc.poll() is None:
                result.outcomes.append(await one(http, url, headers, body("rel", stream=True), 30))

        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        while len(result.completed) < after and time.monotonic() < stop:
            await asyncio.sleep(0.005)
        server.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    cut = sum(1 for o in result.outcomes if not o.ok)
    return result, cut


def kill9_cycles(
    workdir: Path, fake: FakeProcess, database_url: str, cycles: int, concurrency: int
) -> Verdict:
    """Start, load, ``kill -9``, ``cycles`` times on one database: every completion keeps its row."""
    completed: set[str] = set()
    cut = 0
    data = workdir / "data"
    for cycle in range(cycles):
        env = {"GLMSERVE_DATABASE_URL": database_url}
        server = start_gateway(workdir / f"cycle-{cycle}", fake, env, data_dir=data)
        try:
            url = f"{server.root}/v1/chat/completions"
            result, cut_now = uvloop.run(_until_killed(url, auth(server.api_key), concurrency, server, 20))
            server.proc.wait(10)
        finally:
            server.stop()
        completed |= result.completed
        cut += cut_now
    rows = usage_request_ids(database_url)
    lost = completed - rows
    kind = "SQLite" if database_url.startswith("sqlite") else "PostgreSQL"
    figures = {
        "cycles": cycles,
        "completions_seen": len(completed),
        "cut_by_kill": cut,
        "lost_rows": len(lost),
    }
    passed = not lost and cut > 0
    return Verdict(
        f"fault: kill -9 × {cycles} on {kind}", "0 usage rows lost of completed responses", passed, figures
    )


def _replica_table(fake: FakeProcess) -> str:
    return model_table(gateway_models(fake))


def _requests(url: str, key: str, n: int, concurrency: int) -> LoadResult:
    async def run() -> LoadResult:
        result = LoadResult()
        sem = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession() as http:

            async def go() -> None:
                async with sem:
                    result.outcomes.append(await one(http, url, auth(key), body("rel", stream=True), 30))

            await asyncio.gather(*(go() for _ in range(n)))
        return result

    return uvloop.run(run())


def replicas(workdir: Path, fake: FakeProcess, concurrency: int, seconds: float, rpm: int = 40) -> Verdict:
    """Two replicas on one PostgreSQL and one Redis behind HAProxy; one is killed mid-load."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "gateway.toml"
    config.write_text(_replica_table(fake), encoding="utf-8")
    with PrivatePostgres() as pg, PrivateRedis() as redis:
        env = QUIET | {"GLMSERVE_DATABASE_URL": pg.url, "GLMSERVE_REDIS_URL": redis.url}
        key = new_zhipu_key()
        data = workdir / "data"
        started = [
            server_process.start(data, workdir / f"{n}.log", key, env, ["--config", str(config)])
            for n in "ab"
        ]
        a, b = started
        try:
            with HAProxy([a.port, b.port], workdir) as lb:
                figures = _replica_phases(lb, a, b, concurrency, seconds, rpm)
        finally:
            for server in started:
                server.stop()
        rows = usage_request_ids(pg.url)
    figures["lost_rows"] = len(figures.pop("completed") - rows)
    passed = (
        figures["rpm_exact"]["admitted"] == rpm
        and figures["rpm_across_kill"]["admitted"] == rpm
        and figures["after_kill"]["success"] == 1.0
        and figures["lost_rows"] == 0
    )
    target = "requests after the kill all succeed; RPM exact across replicas and the kill; 0 rows lost"
    return Verdict("replicas: HAProxy, one killed", target, passed, figures)


def _replica_phases(
    lb: HAProxy, a: GlmServe, b: GlmServe, concurrency: int, seconds: float, rpm: int
) -> dict[str, Any]:
    url = f"{lb.root}/v1/chat/completions"
    exact_key = limited_key(a, rpm=rpm, name="rpm-exact")
    exact = _requests(url, exact_key, rpm + rpm // 2, 16)
    across_key = limited_key(b, rpm=rpm, name="rpm-across-kill")
    before = _requests(url, across_key, rpm // 2, 4)
    load_key = limited_key(a, name="load")

    def kill() -> None:
        a.proc.send_signal(signal.SIGKILL)

    result, ran = load_with(url, auth(load_key), body("rel"), concurrency, seconds, [(seconds * 0.3, kill)])
    after = _requests(url, across_key, rpm, 4)
    time.sleep(1.0)  # the 429 rows are written after the answer
    completed = exact.completed | before.completed | result.completed | after.completed
    return {
        "rpm_exact": {"sent": len(exact.outcomes), "admitted": len(exact.completed), "limit": rpm},
        "rpm_across_kill": {"admitted": len(before.completed) + len(after.completed), "limit": rpm},
        "in_flight_at_kill": result.summary(result.between(ran["kill"] - 2.0, ran["kill"])),
        "after_kill": result.summary(result.between(ran["kill"], float("inf"))),
        "completed": completed,
    }
