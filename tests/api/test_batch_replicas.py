"""Two replicas on one PostgreSQL schema and one files directory share one batch.

The batch is uploaded and created on replica A; both workers claim its lines under the lease.
Each replica's ``GET /metrics`` counts the requests *it* metered (``glmserve_requests_total`` is
per process, and these replicas serve nothing but the batch), which is how the test tells that
both ran lines: neither the jobs table nor the usage rows record which process ran a line.
Every line is claimed once (``attempts``), is in exactly one output record, and has exactly one
charged usage row; the batch, its counts and its output file read the same from replica B.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import openai
import pytest

from . import server_process
from .credentials import new_zhipu_key
from .prometheus import scrape, value
from .server_process import GlmServe
from .test_batches import MODEL, chat_line, records, upload, wait_batch

LINES = 12


@pytest.fixture(autouse=True)
def _server_alive() -> Iterator[None]:
    """These tests start their own servers: the suite's shared one is not needed (nor started)."""
    yield


@pytest.fixture
def replicas(data_dir: Path, tmp_path: Path, pg_schemas: Any) -> Iterator[tuple[GlmServe, GlmServe, str]]:
    url = pg_schemas.new()
    env = {
        "GLMSERVE_DATABASE_URL": url,
        "GLMSERVE_JOBS__FILES_DIR": str(tmp_path / "files"),  # the shared volume
        "GLMSERVE_JOBS__POLL_S": "0.2",
        "GLMSERVE_MODELS": json.dumps([{"name": MODEL, "packaged": "qwen2.5-coder-0.5b-instruct-q4_k_m"}]),
        "GLMSERVE_ALIASES": "{}",
        # Two engines on a small machine: one thread each, so neither spins waiting for the other.
        "GLMSERVE_ENGINE__THREADS": "1",
        "GLMSERVE_ENGINE__BATCH_THREADS": "1",
        "GLMSERVE_ENGINE__PARALLEL": "2",
    }
    key = new_zhipu_key()  # one static key, one data dir: the same master key file
    with ExitStack() as stack, concurrent.futures.ThreadPoolExecutor(2) as pool:
        logs = (tmp_path / f"{name}.log" for name in "ab")
        starting = [pool.submit(server_process.start, data_dir, log, key, env) for log in logs]
        for future in starting:  # each started server is stopped, even if the other failed
            if future.exception() is None:
                stack.enter_context(future.result())
        a, b = (future.result() for future in starting)
        yield a, b, url


def table(url: str, sql: str, *args: Any) -> list[Any]:
    async def read() -> list[Any]:
        base, _, schema = url.partition("?search_path=")
        conn = await asyncpg.connect(base, server_settings={"search_path": schema})
        try:
            return [tuple(row) for row in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(read())


def lines_run(server: GlmServe) -> int:
    """Requests this process metered and answered: here, the batch lines it ran."""
    return int(value(scrape(server.root), "glmserve_requests_total", model=MODEL, status="200", code="-"))


def test_two_replicas_share_one_batch(replicas: tuple[GlmServe, GlmServe, str]) -> None:
    a, b, url = replicas
    ids = [f"line-{n}" for n in range(LINES)]
    with (
        openai.OpenAI(api_key=a.api_key, base_url=a.v1_url, max_retries=0, timeout=60) as on_a,
        openai.OpenAI(api_key=b.api_key, base_url=b.v1_url, max_retries=0, timeout=60) as on_b,
    ):
        lines = [chat_line(i, f"Name {n + 2} colours.", max_tokens=12) for n, i in enumerate(ids)]
        file = upload(on_a, lines)
        batch = on_a.batches.create(
            input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        done = wait_batch(on_b, batch.id)  # polled on B alone
        out, errors = records(on_b, done.output_file_id), records(on_b, done.error_file_id)
        listed = [item.id for item in on_b.batches.list()]
        from_a = on_a.batches.retrieve(batch.id)
    ran = {"a": lines_run(a), "b": lines_run(b)}
    attempts = dict(table(url, "SELECT custom_id, attempts FROM jobs WHERE batch_id = $1", batch.id))
    rows = "SELECT request_id FROM usage_events WHERE status = 200 AND request_id LIKE $1"
    charged = Counter(r for (r,) in table(url, rows, f"{batch.id}:%"))
    print(f"\nbatch on two replicas: lines run {json.dumps(ran)}")

    assert done.status == "completed", done
    counts = done.request_counts
    assert counts is not None and (counts.total, counts.completed, counts.failed) == (LINES, LINES, 0)
    assert Counter(r["custom_id"] for r in out + errors) == Counter(ids)
    assert all(r["response"]["status_code"] == 200 and r["response"]["body"]["choices"] for r in out)
    assert attempts == dict.fromkeys(ids, 1), "a line was claimed more than once"
    assert charged == Counter(f"{batch.id}:{n}" for n in range(LINES)), charged
    assert ran["a"] + ran["b"] == LINES and ran["a"] > 0 and ran["b"] > 0, ran
    assert batch.id in listed
    assert (from_a.status, from_a.output_file_id) == ("completed", done.output_file_id)
