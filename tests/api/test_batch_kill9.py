"""``kill -9`` mid-batch, again and again: every line ends in exactly one output record, charged once.

The server is killed while a batch runs (right after a line finishes, while the next one is
generating), restarted on the same database and files directory, and killed again. With a short
lease the restarted worker claims the interrupted line again. At the end every ``custom_id`` is
in exactly one record of the output file, and each line has exactly one charged usage row.
"""

from __future__ import annotations

import io
import json
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import openai

from . import server_process
from .credentials import new_zhipu_key
from .test_batches import MODEL, chat_line, jsonl, records, wait_batch

LINES = 5
CYCLES = 3
WAIT_S = 120.0


def succeeded(db: Path, batch_id: str) -> int:
    with sqlite3.connect(db) as conn:
        query = "SELECT COUNT(*) FROM jobs WHERE batch_id = ? AND status = 'succeeded'"
        return int(conn.execute(query, (batch_id,)).fetchone()[0])


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
    }
    key = new_zhipu_key()
    lines = [chat_line(f"line-{n}", f"Name {n + 2} fruits.", max_tokens=8) for n in range(LINES)]
    kills, batch_id = 0, ""
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
            before, deadline = succeeded(db, batch_id), time.monotonic() + WAIT_S
            while succeeded(db, batch_id) <= before and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)  # the next line is generating now
            if succeeded(db, batch_id) < LINES:
                server.proc.send_signal(signal.SIGKILL)
                server.proc.wait(timeout=10)
                kills += 1
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
    print(f"\nbatch kill -9: {json.dumps({'kills': kills, 'lines': LINES, 'attempts': attempts})}")

    assert done.status == "completed", done
    assert Counter(r["custom_id"] for r in out + errors) == Counter(f"line-{n}" for n in range(LINES))
    assert all(r["response"]["status_code"] == 200 for r in out) and not errors
    assert charged == Counter(f"{batch_id}:{n}" for n in range(LINES)), charged
    assert kills >= 1, "every line finished before a kill; nothing was tested"
