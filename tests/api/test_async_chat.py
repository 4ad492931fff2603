"""Zhipu async chat through zai-sdk: submit, poll ``/async-result/{id}``, ownership, bad bodies."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from zai import ZhipuAiClient

from .accounts import admin, create_key
from .server_process import GlmServe

MESSAGES = [{"role": "user", "content": "Say hello."}]
POLL_S = 60.0


@pytest.fixture(scope="module")
def zai(server: GlmServe) -> Iterator[ZhipuAiClient]:
    sdk = ZhipuAiClient(
        api_key=server.api_key, base_url=server.paas_url.rstrip("/"), max_retries=0, timeout=120
    )
    yield sdk
    sdk.close()


def wait_done(zai: ZhipuAiClient, task_id: str) -> Any:
    deadline = time.monotonic() + POLL_S
    while time.monotonic() < deadline:
        result: Any = zai.chat.asyncCompletions.retrieve_completion_result(id=task_id)
        if result.task_status != "PROCESSING":
            return result
        time.sleep(0.2)
    pytest.fail(f"task {task_id} still PROCESSING after {POLL_S}s")


def test_async_chat_succeeds(zai: ZhipuAiClient) -> None:
    task: Any = zai.chat.asyncCompletions.create(
        model="glm-4.5-flash", messages=MESSAGES, max_tokens=8, temperature=0
    )
    assert task.task_status == "PROCESSING" and task.id and task.model == "glm-4.5-flash"

    result = wait_done(zai, task.id)

    assert result.task_status == "SUCCESS", result
    assert result.choices[0].message.content.strip()
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0


def test_async_chat_request_id_echoed(zai: ZhipuAiClient) -> None:
    rid = f"mine-{secrets.token_hex(4)}"
    task: Any = zai.chat.asyncCompletions.create(
        model="glm-4.5-flash", messages=MESSAGES, max_tokens=2, request_id=rid
    )
    assert task.request_id == rid
    assert wait_done(zai, task.id).request_id == rid


def test_async_result_is_owned_by_the_key(server: GlmServe, zai: ZhipuAiClient) -> None:
    task: Any = zai.chat.asyncCompletions.create(model="glm-4.5-flash", messages=MESSAGES, max_tokens=2)
    other_key, _ = create_key(server, name=f"async-other-{secrets.token_hex(3)}")
    url = f"{server.paas_url.rstrip('/')}/async-result/{task.id}"

    theirs = httpx.get(url, headers={"Authorization": f"Bearer {other_key}"})
    mine = httpx.get(url, headers={"Authorization": f"Bearer {server.api_key}"})

    assert theirs.status_code == 404 and theirs.json()["error"]
    assert mine.status_code == 200


def test_async_chat_checks_the_body_before_queueing(server: GlmServe) -> None:
    url = f"{server.v1_url.rstrip('/')}/async/chat/completions"
    headers = {"Authorization": f"Bearer {server.api_key}"}
    unknown = httpx.post(url, headers=headers, json={"model": "no-such-model", "messages": MESSAGES})
    streamed = httpx.post(
        url, headers=headers, json={"model": "glm-4.5-flash", "messages": MESSAGES, "stream": True}
    )

    assert unknown.status_code in (400, 404) and unknown.json()["error"]["param"] == "model"
    assert streamed.status_code == 400 and streamed.json()["error"]["param"] == "stream"


def test_async_usage_row_has_the_task_id(server: GlmServe, zai: ZhipuAiClient) -> None:
    key, key_id = create_key(server, name=f"async-usage-{secrets.token_hex(3)}")
    with ZhipuAiClient(api_key=key, base_url=server.paas_url.rstrip("/"), max_retries=0) as mine:
        task: Any = mine.chat.asyncCompletions.create(model="glm-4.5-flash", messages=MESSAGES, max_tokens=2)
        assert wait_done(mine, task.id).task_status == "SUCCESS"
    rows = usage_rows(server, key_id)

    assert [(r["request_id"], r["protocol"]) for r in rows] == [(task.id, "async")]


def usage_rows(server: GlmServe, key_id: str) -> list[dict[str, Any]]:
    with admin(server) as http:
        response = http.get("/admin/usage", params={"key_id": key_id})
    assert response.status_code == 200, response.text
    return list(response.json()["data"])
