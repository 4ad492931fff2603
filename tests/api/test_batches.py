"""Files and batches through the openai SDK: upload, batch, poll, output records, cancel, ownership."""

from __future__ import annotations

import io
import json
import secrets
import time
from typing import Any

import openai
import pytest
from zai import ZhipuAiClient

from .accounts import admin, create_key
from .server_process import GlmServe

MODEL = "glm-4.5-flash"
POLL_S = 120.0


def chat_line(custom_id: str, text: str = "Say hi.", **body: Any) -> dict[str, Any]:
    payload = {"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": 4, **body}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": payload}


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def upload(sdk: openai.OpenAI, lines: list[dict[str, Any]]) -> Any:
    return sdk.files.create(file=("input.jsonl", io.BytesIO(jsonl(lines))), purpose="batch")


def wait_batch(sdk: openai.OpenAI, batch_id: str) -> Any:
    deadline = time.monotonic() + POLL_S
    while time.monotonic() < deadline:
        batch = sdk.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "cancelled", "expired"):
            return batch
        time.sleep(0.3)
    pytest.fail(f"batch {batch_id} not finished after {POLL_S}s")


def records(sdk: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(line) for line in sdk.files.content(file_id).content.splitlines()]


def test_files_roundtrip(v1_client: openai.OpenAI) -> None:
    data = jsonl([chat_line("a")])
    created = v1_client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch")

    assert (created.purpose, created.bytes, created.filename) == ("batch", len(data), "in.jsonl")
    assert v1_client.files.retrieve(created.id).id == created.id
    assert created.id in [f.id for f in v1_client.files.list()]
    assert v1_client.files.content(created.id).content == data
    assert v1_client.files.delete(created.id).deleted
    with pytest.raises(openai.NotFoundError):
        v1_client.files.retrieve(created.id)


def test_file_purpose_other_than_batch_is_400(v1_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        v1_client.files.create(file=("x.jsonl", io.BytesIO(b"{}\n")), purpose="fine-tune")
    assert "purpose" in str(caught.value)


def test_batch_runs_every_line_once(server: GlmServe) -> None:
    key, key_id = create_key(server, name=f"batch-{secrets.token_hex(3)}")
    with openai.OpenAI(api_key=key, base_url=server.v1_url, max_retries=0, timeout=120) as sdk:
        ids = [f"req-{n}" for n in range(3)]
        bad = chat_line("bad-one", max_tokens=-5)  # well-formed, but its body fails the chat checks
        good_file = upload(sdk, [chat_line(i, f"Count to {n}.") for n, i in enumerate(ids)])
        batch = sdk.batches.create(
            input_file_id=good_file.id, endpoint="/v1/chat/completions", completion_window="24h",
            metadata={"job": "test"},
        )  # fmt: skip
        assert batch.status == "in_progress" and batch.metadata == {"job": "test"}
        done = wait_batch(sdk, batch.id)
        out = records(sdk, done.output_file_id)
        bad_batch = sdk.batches.create(
            input_file_id=upload(sdk, [chat_line("ok"), bad]).id,
            endpoint="/v1/chat/completions", completion_window="24h",
        )  # fmt: skip
        listed = [b.id for b in sdk.batches.list()]
    with admin(server) as http:
        rows = http.get("/admin/usage", params={"key_id": key_id}).json()["data"]

    assert done.status == "completed", done
    assert done.request_counts is not None and (done.request_counts.total, done.request_counts.completed) == (
        3,
        3,
    )
    assert sorted(r["custom_id"] for r in out) == ids
    assert all(r["response"]["status_code"] == 200 and r["response"]["body"]["choices"] for r in out)
    assert done.error_file_id is None
    assert sorted(r["request_id"] for r in rows) == sorted(f"{batch.id}:{n}" for n in range(3))
    assert {r["protocol"] for r in rows} == {"batch"}
    assert bad_batch.status == "failed" and bad_batch.errors is not None
    assert [e.line for e in bad_batch.errors.data or []] == [2]
    assert {batch.id, bad_batch.id} <= set(listed)


def test_batch_belongs_to_its_key(server: GlmServe, v1_client: openai.OpenAI) -> None:
    file = upload(v1_client, [chat_line("x")])
    batch = v1_client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    other_key, _ = create_key(server, name=f"batch-other-{secrets.token_hex(3)}")
    with openai.OpenAI(api_key=other_key, base_url=server.v1_url, max_retries=0) as other:
        with pytest.raises(openai.NotFoundError):
            other.batches.retrieve(batch.id)
        with pytest.raises(openai.NotFoundError):
            other.files.content(file.id)
        with pytest.raises(openai.NotFoundError):
            other.batches.create(
                input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
    wait_batch(v1_client, batch.id)


def test_cancel_stops_lines_not_started(v1_client: openai.OpenAI) -> None:
    lines = [chat_line(f"c{n}", "Write a long story.", max_tokens=64) for n in range(12)]
    batch = v1_client.batches.create(
        input_file_id=upload(v1_client, lines).id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    cancelling = v1_client.batches.cancel(batch.id)
    done = wait_batch(v1_client, batch.id)
    out = records(v1_client, done.output_file_id)

    assert cancelling.status in ("cancelling", "cancelled")
    assert done.status == "cancelled"
    assert done.request_counts is not None and done.request_counts.completed < 12
    assert len(out) == done.request_counts.completed


def test_zai_sdk_batch_of_embeddings(server: GlmServe) -> None:
    lines = [
        {
            "custom_id": f"e{n}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "embedding-2", "input": t},
        }
        for n, t in enumerate(["a cat", "a dog"])
    ]
    with ZhipuAiClient(api_key=server.api_key, base_url=server.paas_url.rstrip("/"), max_retries=0) as zai:
        file: Any = zai.files.create(file=("emb.jsonl", io.BytesIO(jsonl(lines))), purpose="batch")
        batch: Any = zai.batches.create(
            input_file_id=file.id, endpoint="/v1/embeddings", completion_window="24h", metadata={"k": "v"}
        )
        deadline = time.monotonic() + POLL_S
        while batch.status not in ("completed", "failed", "cancelled") and time.monotonic() < deadline:
            time.sleep(0.3)
            batch = zai.batches.retrieve(batch.id)
        out = [json.loads(line) for line in zai.files.content(batch.output_file_id).content.splitlines()]

    assert batch.status == "completed" and batch.request_counts.completed == 2
    assert sorted(r["custom_id"] for r in out) == ["e0", "e1"]
    assert all(len(r["response"]["body"]["data"][0]["embedding"]) > 0 for r in out)


def test_zhipu_guide_batch_names_v4_endpoints(server: GlmServe) -> None:
    """Zhipu's batch guide writes ``/v4/chat/completions`` in the lines and in ``batches.create``
    (through the zhipuai SDK here, which sends ``completion_window: null``); the batch echoes the
    name it was given. A line whose url names another endpoint still fails the batch."""
    from zhipuai import ZhipuAI

    lines = [{**chat_line(f"z{n}"), "url": "/v4/chat/completions"} for n in range(2)]
    zp = ZhipuAI(api_key=server.api_key, base_url=server.paas_url, max_retries=0)
    file: Any = zp.files.create(file=("zhipu.jsonl", jsonl(lines)), purpose="batch")
    batch: Any = zp.batches.create(input_file_id=file.id, endpoint="/v4/chat/completions")
    deadline = time.monotonic() + POLL_S
    while batch.status not in ("completed", "failed", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.3)
        batch = zp.batches.retrieve(batch.id)
    out = [json.loads(line) for line in zp.files.content(batch.output_file_id).content.splitlines()]

    assert batch.endpoint == "/v4/chat/completions"
    assert batch.status == "completed" and batch.request_counts.completed == 2
    assert sorted(r["custom_id"] for r in out) == ["z0", "z1"]
    assert all(r["response"]["body"]["choices"][0]["message"]["content"] for r in out)

    mixed = [{**chat_line("m0"), "url": "/v4/embeddings"}]
    other: Any = zp.files.create(file=("mixed.jsonl", jsonl(mixed)), purpose="batch")
    refused: Any = zp.batches.create(input_file_id=other.id, endpoint="/v4/chat/completions")
    assert refused.status == "failed"
    assert [(e.line, e.code) for e in refused.errors.data] == [(1, "mismatched_endpoint")]
