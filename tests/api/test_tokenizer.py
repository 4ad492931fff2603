"""POST /tokenizer (Zhipu) counts what a chat request is charged; /tokenize and /detokenize."""

from __future__ import annotations

import httpx
import openai
import pytest

MESSAGES = [
    {"role": "system", "content": "You answer in one word."},
    {"role": "user", "content": "What colour is the sky? 天空是什么颜色？"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


@pytest.mark.parametrize("tools", [None, TOOLS], ids=["messages", "messages-and-tools"])
def test_tokenizer_equals_the_prompt_tokens_a_chat_request_is_charged(
    client: openai.OpenAI, http: httpx.Client, tools: list[dict[str, object]] | None
) -> None:
    body: dict[str, object] = {"model": "glm-4.5-flash", "messages": MESSAGES}
    if tools:
        body["tools"] = tools
    counted = http.post("tokenizer", json=body)
    assert counted.status_code == 200, counted.text
    answer = counted.json()
    assert answer["id"] and answer["request_id"] and answer["created"]
    extra = {"tools": tools} if tools else {}
    chat = client.chat.completions.create(model="glm-4.5-flash", messages=MESSAGES, max_tokens=1, **extra)  # type: ignore[arg-type]
    assert chat.usage is not None
    assert answer["usage"]["prompt_tokens"] == chat.usage.prompt_tokens


def test_tokenize_and_detokenize_round_trip(http: httpx.Client) -> None:
    text = "Hello, 世界! Tokens round-trip."
    tokens = http.post("tokenize", json={"model": "glm-4.5-flash", "prompt": text}).json()
    assert tokens["count"] == len(tokens["tokens"]) > 3 and tokens["max_model_len"] > 0
    llama_shape = http.post("tokenize", json={"model": "glm-4.5-flash", "content": text}).json()
    assert llama_shape["tokens"] == tokens["tokens"]
    back = http.post("detokenize", json={"model": "glm-4.5-flash", "tokens": tokens["tokens"]}).json()
    assert back["prompt"] == back["content"] == text


def test_tokenize_messages_counts_like_the_tokenizer(http: httpx.Client) -> None:
    by_messages = http.post("tokenize", json={"model": "glm-4.5-flash", "messages": MESSAGES}).json()
    counted = http.post("tokenizer", json={"model": "glm-4.5-flash", "messages": MESSAGES}).json()
    assert by_messages["count"] == counted["usage"]["prompt_tokens"]


def test_an_embedding_model_tokenizes_with_its_own_vocabulary(http: httpx.Client) -> None:
    bert = http.post("tokenize", json={"model": "embedding-2", "prompt": "hello world"}).json()
    assert bert["tokens"] == [101, 7592, 2088, 102]  # [CLS] hello world [SEP] in bert-base-uncased
    bare = http.post(
        "tokenize", json={"model": "embedding-2", "prompt": "hello world", "add_special_tokens": False}
    )
    assert bare.json()["tokens"] == [7592, 2088]


BAD = [
    ("tokenizer", {"model": "glm-4.5-flash", "messages": []}, "messages"),
    ("tokenizer", {"model": "embedding-2", "messages": [{"role": "user", "content": "x"}]}, "model"),
    ("tokenizer", {"model": "nope", "messages": [{"role": "user", "content": "x"}]}, "model"),
    ("tokenize", {"model": "glm-4.5-flash"}, "prompt"),
    ("detokenize", {"model": "glm-4.5-flash", "tokens": [-1]}, "tokens"),
    ("detokenize", {"model": "glm-4.5-flash", "tokens": "abc"}, "tokens"),
]


@pytest.mark.parametrize(("path", "body", "param"), BAD)
def test_bad_requests_are_400s(http: httpx.Client, path: str, body: dict[str, object], param: str) -> None:
    response = http.post(path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
