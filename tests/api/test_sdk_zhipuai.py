"""The zhipuai SDK against glmserve: raw-key and JWT authentication, chat and stream.

zhipuai rewrites `temperature=0` into `temperature: 0.01, do_sample: false` and always sends
`"thinking": null, "response_format": null`; glmserve must treat that as greedy, so the text must
equal what the openai SDK gets with `temperature=0`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openai import OpenAI
from zhipuai import ZhipuAI

from .server_process import GlmServe

MESSAGES = [
    {"role": "system", "content": "你是一个有用的AI助手。"},
    {"role": "user", "content": "用一句话介绍一下北京。"},
]
MAX_TOKENS = 24


def paas_base(server: GlmServe) -> str:
    """The SDK's own default has no trailing slash; use the same form."""
    return server.paas_url.rstrip("/")


@pytest.fixture(scope="module", params=["raw-key", "jwt"])
def zhipu(request: pytest.FixtureRequest, server: GlmServe) -> Iterator[ZhipuAI]:
    sdk = ZhipuAI(
        api_key=server.api_key,
        base_url=paas_base(server),
        max_retries=0,
        timeout=120,
        disable_token_cache=request.param == "raw-key",
    )
    yield sdk
    sdk.close()


@pytest.fixture(scope="module")
def openai_greedy(client: OpenAI) -> str:
    completion = client.chat.completions.create(
        model="glm-4.5-flash", messages=MESSAGES, temperature=0, max_tokens=MAX_TOKENS
    )
    return completion.choices[0].message.content or ""


def test_chat(zhipu: ZhipuAI, openai_greedy: str) -> None:
    response: Any = zhipu.chat.completions.create(
        model="glm-4.5-flash", messages=MESSAGES, temperature=0, max_tokens=MAX_TOKENS
    )

    content = response.choices[0].message.content
    print(content)
    assert content.strip()
    assert content == openai_greedy
    assert response.model == "glm-4.5-flash"
    assert response.request_id
    assert response.choices[0].finish_reason in ("stop", "length")
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_stream(zhipu: ZhipuAI, openai_greedy: str) -> None:
    stream: Any = zhipu.chat.completions.create(
        model="glm-4.5-flash", messages=MESSAGES, temperature=0, max_tokens=MAX_TOKENS, stream=True
    )

    pieces, usages, finishes = [], [], []
    for chunk in stream:
        if chunk.usage is not None:
            usages.append(chunk.usage)
        if not chunk.choices:
            continue
        pieces.append(chunk.choices[0].delta.content or "")
        if chunk.choices[0].finish_reason:
            finishes.append(chunk.choices[0].finish_reason)

    assert "".join(pieces) == openai_greedy
    assert len(finishes) == 1 and finishes[0] in ("stop", "length")
    assert len(usages) == 1 and usages[0].completion_tokens > 0


def test_request_id_is_echoed(zhipu: ZhipuAI) -> None:
    response: Any = zhipu.chat.completions.create(
        model="glm-4.5-air", messages=MESSAGES, request_id="zhipuai-req-0001", max_tokens=4
    )

    assert response.request_id == "zhipuai-req-0001"
    assert response.model == "glm-4.5-air"
