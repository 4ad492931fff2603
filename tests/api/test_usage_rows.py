"""One usage row per request, committed before the response ends; daily sums; CLI; metrics; log."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx

from .accounts import TIMEOUT_S, admin, chat, chat_body, create_key
from .prometheus import moved, scrape, value
from .server_process import GlmServe


def rows_for(server: GlmServe, request_id: str, key: str | None = None) -> list[dict[str, Any]]:
    with admin(server, key) as http:
        response = http.get("/admin/usage", params={"request_id": request_id})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


def wait_rows(server: GlmServe, request_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while not (rows := rows_for(server, request_id)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return rows


def test_a_json_answer_has_its_row_with_the_same_usage(server: GlmServe) -> None:
    key, key_id = create_key(server, name="usage-json")
    request_id = f"usage-{secrets.token_hex(6)}"
    response = chat(server, key, max_tokens=3, request_id=request_id)
    assert response.status_code == 200
    usage = response.json()["usage"]
    (row,) = rows_for(server, request_id, key)  # no waiting: committed before the body was sent
    assert (row["key_id"], row["model"], row["status"], row["error_code"], row["stream"]) == (
        key_id, "glm-4.5-flash", 200, None, False,
    )  # fmt: skip
    assert row["prompt_tokens"] == usage["prompt_tokens"]
    assert row["completion_tokens"] == usage["completion_tokens"]
    assert row["cached_tokens"] == usage["prompt_tokens_details"]["cached_tokens"]
    assert row["deployment"] and 0 < row["ttft_ms"] <= row["latency_ms"]


def test_a_stream_has_its_row_before_done(server: GlmServe) -> None:
    key, _ = create_key(server, name="usage-stream")
    request_id = f"usage-{secrets.token_hex(6)}"
    headers = {"Authorization": f"Bearer {key}"}
    body = chat_body(max_tokens=5, stream=True, request_id=request_id, stream_options={"include_usage": True})
    usage: dict[str, Any] = {}
    http = httpx.Client(base_url=server.paas_url, headers=headers, timeout=TIMEOUT_S)
    with http, http.stream("POST", "chat/completions", json=body) as stream:
        for line in stream.iter_lines():
            if line == "data: [DONE]":
                found = rows_for(server, request_id)  # the server has not closed the response yet
                break
            if line.startswith("data: ") and '"usage"' in line:
                usage = json.loads(line[6:])["usage"] or usage
    assert len(found) == 1, "the row must be committed before [DONE] is sent"
    assert found[0]["stream"] is True and found[0]["completion_tokens"] == usage["completion_tokens"]


def test_refused_and_failed_requests_have_rows_too(server: GlmServe) -> None:
    key, key_id = create_key(server, name="usage-errors", rpm=1)
    assert chat(server, key).status_code == 200
    limited_id, bad_id = f"limited-{secrets.token_hex(4)}", f"bad-{secrets.token_hex(4)}"
    assert chat(server, key, request_id=limited_id).status_code == 429
    (limited,) = wait_rows(server, limited_id)
    assert (limited["status"], limited["error_code"], limited["prompt_tokens"]) == (429, "1303", 0)
    other_key, other_id = create_key(server, name="usage-bad")
    assert chat(server, other_key, request_id=bad_id, tool_choice="required").status_code == 400
    (bad,) = wait_rows(server, bad_id)
    assert (bad["status"], bad["error_code"], bad["prompt_tokens"]) == (400, "1214", 0)
    assert (limited["key_id"], bad["key_id"]) == (key_id, other_id), "each row names the key that sent it"


def test_daily_sums_through_the_api_and_the_cli(server: GlmServe) -> None:
    key, key_id = create_key(server, name="usage-daily")
    answers = [chat(server, key, max_tokens=2).json()["usage"] for _ in range(2)]
    with admin(server, key) as http:
        daily = http.get("/admin/usage/daily").json()["data"]
    (today,) = daily
    assert today["key_id"] == key_id and today["requests"] == 2 and today["errors"] == 0
    assert today["total_tokens"] == sum(a["total_tokens"] for a in answers)
    cli = server.cli("usage", "--key", key_id, "--json").stdout.splitlines()
    assert [json.loads(line)["total_tokens"] for line in cli] == [today["total_tokens"]]
    per_request = server.cli("usage", "--key", key_id, "--requests").stdout.splitlines()
    assert per_request[0].startswith("CREATED_AT") and len(per_request) == 3
    table = server.cli("usage", "--key", key_id, "--model", "glm-4.5-flash", "--since", today["day"]).stdout
    assert key_id in table and today["day"] in table


def test_prompts_and_answers_are_not_stored(server: GlmServe) -> None:
    key, _ = create_key(server, name="usage-private")
    marker = f"zebra{secrets.token_hex(8)}"
    assert chat(server, key, messages=[{"role": "user", "content": f"Say {marker}"}]).status_code == 200
    stored = b"".join(p.read_bytes() for p in server.data_dir.glob("glmserve.db*"))
    assert stored, "the suite's server keeps its database in its data dir"
    assert marker.encode() not in stored


def test_metrics_count_each_request(server: GlmServe) -> None:
    key, _ = create_key(server, name="metrics", rpm=1)
    labels = {"model": "glm-4.5-flash"}
    before = scrape(server.root)
    answered = chat(server, key, max_tokens=2)
    refused = chat(server, key)
    after = scrape(server.root)
    assert (answered.status_code, refused.status_code) == (200, 429)
    usage = answered.json()["usage"]

    assert moved(before, after, "glmserve_requests_total", code="-", status="200", **labels) == 1
    assert moved(before, after, "glmserve_requests_total", code="1303", status="429", **labels) == 1
    for kind in ("prompt", "completion"):
        assert moved(before, after, "glmserve_tokens_total", kind=kind, **labels) == usage[f"{kind}_tokens"]
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    assert moved(before, after, "glmserve_tokens_total", kind="cached", **labels) == cached
    for histogram in ("glmserve_time_to_first_token_seconds", "glmserve_request_duration_seconds"):
        assert moved(before, after, f"{histogram}_count", **labels) == 1, "the refusal is not timed"
        assert moved(before, after, f"{histogram}_sum", **labels) > 0
    route = {"method": "POST", "route": "/chat/completions"}
    assert moved(before, after, "glmserve_http_requests_total", status="200", **route) == 1
    assert moved(before, after, "glmserve_http_requests_total", status="429", **route) == 1
    assert value(after, "glmserve_requests_in_flight") == 0


def test_metrics_show_a_generation_in_flight(server: GlmServe) -> None:
    scraped = scrape(server.root)
    engines = {dict(labels)["engine"] for name, labels in scraped if name == "glmserve_engine_in_flight"}
    headers = {"Authorization": f"Bearer {server.api_key}"}
    body = chat_body(max_tokens=24, stream=True)
    http = httpx.Client(base_url=server.paas_url, headers=headers, timeout=TIMEOUT_S)
    with http, http.stream("POST", "chat/completions", json=body) as stream:
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))
        during = scrape(server.root)
        assert [line for line in lines if line.startswith("data:")][-1] == "data: [DONE]"
    assert value(during, "glmserve_requests_in_flight") == 1
    busy = [e for e in engines if value(during, "glmserve_engine_in_flight", engine=e) == 1]
    assert len(busy) == 1, "one embedded engine (named after its GGUF) is generating"
    assert sum(value(during, "glmserve_engine_in_flight", engine=e) for e in engines) == 1
    assert value(during, "glmserve_engine_queue_depth", engine=busy[0]) == 0
    assert value(scrape(server.root), "glmserve_requests_in_flight") == 0


def test_access_log_is_json_and_never_holds_a_secret(server: GlmServe) -> None:
    key, key_id = create_key(server, name="logged")
    secret = key.split(".")[1]
    request_id = f"logged-{secrets.token_hex(4)}"
    assert chat(server, key, request_id=request_id).status_code == 200
    httpx.get(f"{server.paas_url}models?api_key={key}", headers={"Authorization": key}, timeout=10)
    httpx.post(
        f"{server.root}/admin/keys/{key}/revoke", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    httpx.get(f"{server.root}/nothing/{key}", timeout=10)
    chat(server, f"{key_id}.WrongSecret00000")
    wanted = {"unmatched", "/admin/keys/{key_id}/revoke"}
    deadline = time.monotonic() + 10  # a line is written after its response's last byte
    while True:
        log = server.log_tail(2_000_000)
        lines = [line for line in log.splitlines() if line.startswith('{"time"') and line.endswith("}")]
        entries = [json.loads(line) for line in lines]
        seen = {e["route"] for e in entries} | {e["request_id"] for e in entries}
        if (wanted | {request_id}) <= seen or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert secret not in log and server.secret not in log
    (mine,) = [e for e in entries if e["request_id"] == request_id]
    assert (mine["route"], mine["status"], mine["key_id"], mine["model"]) == (
        "/chat/completions", 200, key_id, "glm-4.5-flash",
    )  # fmt: skip
    assert mine["duration_ms"] > 0 and mine["bytes"] > 0
    assert wanted <= {e["route"] for e in entries}
