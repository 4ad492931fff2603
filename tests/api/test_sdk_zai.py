"""zai-sdk (ZhipuAiClient and ZaiClient) against glmserve, streaming and not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from zai import ZaiClient, ZhipuAiClient

from .server_process import GlmServe

MESSAGES = [{"role": "user", "content": "Say hello in three languages."}]
MAX_TOKENS = 24
ZaiSdkClient = ZhipuAiClient | ZaiClient


@pytest.fixture(
    scope="module",
    params=[(ZhipuAiClient, True), (ZhipuAiClient, False), (ZaiClient, True)],
    ids=["zhipu-raw-key", "zhipu-jwt", "zai-raw-key"],
)
def zai(request: pytest.FixtureRequest, server: GlmServe) -> Iterator[ZaiSdkClient]:
    cls, disable_token_cache = request.param
    sdk = cls(
        api_key=server.api_key,
        base_url=server.paas_url.rstrip("/"),
        max_retries=0,
        timeout=120,
        disable_token_cache=disable_token_cache,
    )
    yield sdk
    sdk.close()


def test_chat(zai: ZaiSdkClient) -> None:
    response: Any = zai.chat.completions.create(
        model="glm-4.5-flash", messages=MESSAGES, temperature=0, max_tokens=MAX_TOKENS
    )

    assert response.choices[0].message.content.strip()
    assert response.choices[0].message.role == "assistant"
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0


def test_stream(zai: ZaiSdkClient) -> None:
    greedy: Any = zai.chat.completions.create(
        model="glm-4.5-flash", messages=MESSAGES, temperature=0, max_tokens=MAX_TOKENS
    )
    stream: Any = zai.chat.completions.create(
        model="glm-4.5-flash", messages=MESSAGES, temperature=0, max_tokens=MAX_TOKENS, stream=True
    )

    pieces, usages = [], []
    for chunk in stream:
        if chunk.usage is not None:
            usages.append(chunk.usage)
        if not chunk.choices:  # the pattern in Zhipu's own streaming docs
            continue
        if chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
            pieces.append(chunk.choices[0].delta.content)
    print()

    content = "".join(pieces)
    assert content.strip()
    assert content == greedy.choices[0].message.content
    assert len(usages) == 1
    assert usages[0].total_tokens == usages[0].prompt_tokens + usages[0].completion_tokens
