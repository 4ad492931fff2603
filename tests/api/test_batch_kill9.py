"""``kill -9`` mid-batch, again and again: every line ends in exactly one output record, charged once.

The server is killed while a batch runs (once a line has finished and the next one is claimed,
after a delay that varies from cycle to cycle, so the kill lands before, during and after the
next line's generation), restarted on the same database and files directory, and killed again,
``CYCLES`` times. With a short lease the restarted worker claims the interrupted line again. At
the end every ``custom_id`` is in exactly one record of the output file, each line has exactly
one charged usage row, and some line was claimed again after a kill.
"""

from __future__ import annotations

import io
import json
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from . import server_process
from .credentials import new_zhipu_key
from .server_process import GlmServe
from .test_batches import MODEL, chat_line, jsonl, records, wait_batch

CYCLES = 10  # each restarts the server (loads the 0.5B model): about 5 s a cycle on 2 cores
LINES = 3 * CYCLES  # a cycle finishes one or two lines; the rest run after the last kill
WAIT_S = 120.0
DELAYS_S = (0.0, 0.1, 0.2, 0.4)  # after the next line is claimed: before, in and after generation


@pytest.fixture(autouse=True)
def _server_alive() -> Iterator[None]:
    """This test starts its own servers: the suite's shared one is not needed (nor started)."""
    yield


def statuses(db: Path, batch_id: str) -> Counter[str]:
    with sqlite3.connect(db) as conn:
        query = "SELECT status, COUNT(*) FROM jobs WHERE batch_id = ? GROUP BY status"
        return Counter({status: int(n) for status, n in conn.execute(query, (batch_id,))})


def kill_mid_line(server: GlmServe, db: Path, batch_id: str, delay_s: float) -> bool:
    """Once a line has finished and the next is claimed, wait ``delay_s`` and ``kill -9``."""
    before, deadline = statuses(db, batch_id)["succeeded"], time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        now = statuses(db, batch_id)
        if now["succeeded"] >= LINES:
            return False
        if now["succeeded"] > before and now["running"]:
            break
        time.sleep(0.05)
    time.sleep(delay_s)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)
    return True


def test_kill_9_mid_batch_resumes_each_line_once(data_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "batch.db"
    env = {
        "GLMSERVE_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "GLMSERVE_JOBS__FILES_DIR": str(tmp_path / "files"),
        "GLMSERVE_JOBS__LEASE_S": "1.5",
        "GLMSERVE_JOBS__POLL_S": "0.2",
        # Only the model the batch uses, so each restart loads one small model.
        "GLMSERVE_MODELS": json.dumps([{"name": MODEL, "packaged": "qwen2.5-coder-0.5b-instruct-q4_k_m"}]),
        "GLMSERVE_ALIASES": "{}",
        # One thread: two threads beside a busy neighbour wait on each other at every token
        # (README, Benchmarks), and this machine runs other work.
        "GLMSERVE_ENGINE__THREADS": "1",
        "GLMSERVE_ENGINE__BATCH_THREADS": "1",
    }
    key = new_zhipu_key()
    lines = [chat_line(f"line-{n}", f"Name {n + 2} fruits.", max_tokens=8) for n in range(LINES)]
    kills, batch_id, started = 0, "", time.monotonic()
    for cycle in range(CYCLES + 1):
        server = server_process.start(data_dir, tmp_path / f"server-{cycle}.log", key, env)
        try:
            sdk = openai.OpenAI(api_key=key, base_url=server.v1_url, max_retries=0, timeout=60)
            if not batch_id:
                file = sdk.files.create(file=("in.jsonl", io.BytesIO(jsonl(lines))), purpose="batch")
                batch_id = sdk.batches.create(
                    input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
                ).id
            if cycle == CYCLES:
                done = wait_batch(sdk, batch_id)
                out = records(sdk, done.output_file_id)
                errors = records(sdk, done.error_file_id)
                break
            kills += kill_mid_line(server, db, batch_id, DELAYS_S[cycle % len(DELAYS_S)])
        finally:
            server.stop()
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT request_id FROM usage_events WHERE request_id LIKE ? AND status = 200", (f"{batch_id}:%",)
        ).fetchall()
        attempts = sum(
            a for (a,) in conn.execute("SELECT attempts FROM jobs WHERE batch_id = ?", (batch_id,))
        )
    charged = Counter(r for (r,) in rows)
    took = round(time.monotonic() - started, 1)
    print(f"\nbatch kill -9: {json.dumps({'kills': kills, 'lines': LINES, 'attempts': attempts, 's': took})}")

    assert done.status == "completed", done
    assert Counter(r["custom_id"] for r in out + errors) == Counter(f"line-{n}" for n in range(LINES))
    assert all(r["response"]["status_code"] == 200 for r in out) and not errors
    assert charged == Counter(f"{batch_id}:{n}" for n in range(LINES)), charged
    assert kills == CYCLES, f"only {kills} of {CYCLES} kills landed before the batch finished"
    # Each kill interrupts at most the one line claimed; at least one was claimed again.
    assert LINES < attempts <= LINES + kills, attempts
