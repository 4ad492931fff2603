"""Parallel streams share the engine's slots correctly, and a client disconnect frees its slot."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from openai import AsyncOpenAI, OpenAI

from .server_process import GlmServe

# Batched decoding is not bit-identical to decoding alone (the matmul kernels and the KV layout depend
# on the batch), so a near-tie between two tokens can flip: "apples, bananas, and oranges" alone vs
# "apples, oranges, and bananas" in parallel, measured with this model in xllamacpp. These prompts have
# one overwhelmingly likely answer, so a difference means requests got mixed up, not rounding.
PROMPTS = [
    "Count from 1 to 10, separated by commas. Output only the numbers.",
    "List the letters of the English alphabet from A to J, separated by spaces.",
    "Repeat exactly, and nothing else: The quick brown fox jumps over the lazy dog.",
    "Write the days of the week starting from Monday, separated by commas.",
]
MAX_TOKENS = 24
FREE_SLOT_WITHIN_S = 2.0


def request(prompt: str) -> dict[str, Any]:
    return {
        "model": "glm-4.5-flash",
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": MAX_TOKENS,
    }


async def stream_one(sdk: AsyncOpenAI, prompt: str) -> dict[str, Any]:
    stream = await sdk.chat.completions.create(**request(prompt), stream=True)
    pieces, finishes, usages = [], [], []
    async for chunk in stream:
        if chunk.usage is not None:
            usages.append(chunk.usage)
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    return {"content": "".join(pieces), "finishes": finishes, "usages": usages}


async def max_in_flight(server: GlmServe, stop: asyncio.Event) -> int:
    """Poll /health while the streams run; the highest in_flight seen."""
    highest = 0
    async with httpx.AsyncClient(timeout=10) as health:
        while not stop.is_set():
            response = await health.get(f"{server.root}/health")
            highest = max(highest, int(response.json()["in_flight"]))
            await asyncio.sleep(0.02)
    return highest


async def run_concurrently(server: GlmServe) -> tuple[list[dict[str, Any]], int]:
    async with AsyncOpenAI(
        api_key=server.api_key, base_url=server.paas_url, max_retries=0, timeout=120
    ) as sdk:
        stop = asyncio.Event()
        poller = asyncio.create_task(max_in_flight(server, stop))
        try:
            results = await asyncio.gather(*(stream_one(sdk, prompt) for prompt in PROMPTS))
        finally:
            stop.set()
        return list(results), await poller


def test_four_parallel_streams_match_their_solo_runs(client: OpenAI, server: GlmServe) -> None:
    solo = [client.chat.completions.create(**request(p)).choices[0].message.content for p in PROMPTS]

    results, highest = asyncio.run(run_concurrently(server))

    for prompt, alone, together in zip(PROMPTS, solo, results, strict=True):
        assert len(together["finishes"]) == 1, prompt
        assert len(together["usages"]) == 1 and together["usages"][0].completion_tokens > 0, prompt
        assert together["content"] == alone, f"{prompt!r}: parallel {together['content']!r} != solo {alone!r}"
    assert highest >= 2, f"the four streams never ran in parallel (max in_flight seen: {highest})"


def wait_idle(server: GlmServe, within_s: float) -> None:
    """Poll /health until no generation runs; fail if that takes `within_s` or longer."""
    started = time.monotonic()
    while (health := server.health())["in_flight"] != 0:
        waited = time.monotonic() - started
        assert waited < within_s, f"generation still running {waited:.1f}s later: {health}"
        time.sleep(0.05)


def test_disconnect_frees_the_slot(server: GlmServe, client: OpenAI) -> None:
    wait_idle(server, within_s=30)  # whatever earlier tests started has finished
    long_answer = {
        "model": "glm-4.5-flash",
        "messages": [
            {"role": "user", "content": "Write a very long, detailed essay on the history of computing."}
        ],
        "temperature": 0,
        "max_tokens": 2000,
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {server.api_key}"}

    with (
        httpx.Client(base_url=server.paas_url, headers=headers, timeout=120) as raw,
        raw.stream("POST", "chat/completions", json=long_answer) as response,
    ):
        assert response.status_code == 200
        # Breaking out of iter_lines() would close the response (a disconnect) before /health is
        # asked; advancing one iterator by hand keeps the connection open while we look.
        lines = response.iter_lines()
        events = 0
        while events < 3:
            events += next(lines).startswith("data: ")
        health = server.health()
        assert health["in_flight"] >= 1, f"/health must count the streaming generation: {health}"
    # Leaving the block closes the half-read response and its connection: a client disconnect.
    wait_idle(server, within_s=FREE_SLOT_WITHIN_S)

    after = client.chat.completions.create(**request("Say hi."))
    assert after.choices[0].finish_reason in ("stop", "length")
    assert after.choices[0].message.content
