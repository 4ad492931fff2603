"""POST /embeddings with the real SDKs (openai, zai-sdk, LangChain) and the real packaged models.

embedding-2 is all-MiniLM-L6-v2 (384 dims), embedding-3 EmbeddingGemma-300M (768, Matryoshka
512/256/128); both converted to GGUF at set-up and served by llama.cpp in embedding mode.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest
from langchain_openai import OpenAIEmbeddings
from zai import ZhipuAiClient

from .server_process import GlmServe

TEXTS = [
    f"Sentence number {i} is about {topic}." for i, topic in enumerate(["cats", "rain", "tea", "jazz"] * 4)
]


def unit(vector: list[float]) -> np.ndarray:
    return np.asarray(vector, dtype=np.float64)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_the_sdk_default_base64_decodes_to_a_unit_vector(client: openai.OpenAI) -> None:
    response = client.embeddings.create(model="embedding-2", input="The cat sits on the mat.")
    (item,) = response.data
    assert response.model == "embedding-2" and response.object == "list"
    assert len(item.embedding) == 384 and item.index == 0
    assert abs(np.linalg.norm(item.embedding) - 1) < 1e-4
    assert response.usage.prompt_tokens == response.usage.total_tokens > 2


def test_float_and_base64_are_the_same_vector(client: openai.OpenAI, http: httpx.Client) -> None:
    floats = client.embeddings.create(model="embedding-2", input="hello", encoding_format="float")
    raw = http.post(
        "embeddings", json={"model": "embedding-2", "input": "hello", "encoding_format": "base64"}
    )
    assert raw.status_code == 200, raw.text
    decoded = np.frombuffer(base64.b64decode(raw.json()["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, floats.data[0].embedding, atol=1e-6)


@pytest.mark.parametrize("model", ["embedding-2", "embedding-3"])
def test_a_batch_answers_each_input_in_order(client: openai.OpenAI, model: str) -> None:
    batch = client.embeddings.create(model=model, input=TEXTS)
    assert [d.index for d in batch.data] == list(range(len(TEXTS)))
    for i in (0, 5, 15):
        alone = client.embeddings.create(model=model, input=TEXTS[i]).data[0].embedding
        assert cosine(unit(alone), unit(batch.data[i].embedding)) > 0.9999
    assert cosine(unit(batch.data[0].embedding), unit(batch.data[1].embedding)) < 0.99  # distinct inputs


@pytest.mark.parametrize("model", ["embedding-2", "embedding-3"])
def test_token_arrays_embed_like_their_text(client: openai.OpenAI, http: httpx.Client, model: str) -> None:
    text = "Token arrays come from the model's own vocabulary."
    tokens = http.post("tokenize", json={"model": model, "prompt": text}).json()["tokens"]
    by_text = client.embeddings.create(model=model, input=text, encoding_format="float").data[0].embedding
    one = client.embeddings.create(model=model, input=tokens, encoding_format="float")
    many = client.embeddings.create(model=model, input=[tokens, tokens[:4]], encoding_format="float")
    assert cosine(unit(by_text), unit(one.data[0].embedding)) > 0.9999
    assert one.usage.prompt_tokens == len(tokens)
    assert len(many.data) == 2 and many.usage.prompt_tokens == len(tokens) + 4


def test_dimensions_shorten_a_matryoshka_model(client: openai.OpenAI) -> None:
    full = (
        client.embeddings.create(model="embedding-3", input="hello", encoding_format="float")
        .data[0]
        .embedding
    )
    assert len(full) == 768
    for size in (512, 256, 128):
        short = (
            client.embeddings.create(model="embedding-3", input="hello", dimensions=size).data[0].embedding
        )
        assert len(short) == size and abs(np.linalg.norm(short) - 1) < 1e-4
        prefix = unit(full[:size])
        assert np.allclose(short, prefix / np.linalg.norm(prefix), atol=1e-5)
    native = client.embeddings.create(model="embedding-3", input="hello", dimensions=768).data[0].embedding
    assert np.allclose(native, full, atol=1e-6)


@pytest.mark.parametrize(("model", "size", "offered"), [("embedding-3", 1024, "768, 512, 256, 128"),
                                                        ("embedding-2", 256, "384")])  # fmt: skip
def test_a_size_the_model_does_not_offer_is_refused_naming_those_it_does(
    client: openai.OpenAI, model: str, size: int, offered: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=model, input="hello", dimensions=size)
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == "dimensions" and error["code"] == "1214"
    assert f"offers {offered}" in error["message"]


def test_aliases_and_the_v1_prefix(v1_client: openai.OpenAI) -> None:
    small = v1_client.embeddings.create(model="text-embedding-3-small", input="hello")
    large = v1_client.embeddings.create(model="text-embedding-3-large", input="hello")
    assert small.model == "text-embedding-3-small" and len(small.data[0].embedding) == 384
    assert large.model == "text-embedding-3-large" and len(large.data[0].embedding) == 768


BAD_INPUTS = [
    ("empty-string", {"model": "embedding-2", "input": ""}, "input[0]", "1214"),
    ("empty-list", {"model": "embedding-2", "input": []}, "input", "1214"),
    ("too-many-inputs", {"model": "embedding-2", "input": ["x"] * 65}, "input", "1214"),
    ("negative-token", {"model": "embedding-2", "input": [[101, -5, 102]]}, "input[0]", "1214"),
    ("unknown-token", {"model": "embedding-2", "input": [[101, 9_999_999, 102]]}, "input", "1214"),
    ("too-long", {"model": "embedding-2", "input": "word " * 600}, "input", "1214"),
    ("chat-model", {"model": "glm-4.5-flash", "input": "x"}, "model", "1214"),
    ("unknown-model", {"model": "no-such-embedder", "input": "x"}, "model", "1211"),
    (
        "bad-format",
        {"model": "embedding-2", "input": "x", "encoding_format": "int8"},
        "encoding_format",
        "1214",
    ),
    ("zero-dimensions", {"model": "embedding-3", "input": "x", "dimensions": 0}, "dimensions", "1214"),
    ("mixed-input", {"model": "embedding-2", "input": ["x", 3]}, "input", "1214"),
]


@pytest.mark.parametrize(
    ("body", "param", "code"), [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS]
)
def test_each_bad_input_is_a_clear_400(
    http: httpx.Client, body: dict[str, object], param: str, code: str
) -> None:
    response = http.post("embeddings", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["param"].startswith(param), error
    assert error["message"]


def test_a_chat_request_to_an_embedding_model_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="does not chat"):
        client.chat.completions.create(model="embedding-2", messages=[{"role": "user", "content": "hi"}])


@pytest.fixture(scope="module")
def zai(server: GlmServe) -> Iterator[ZhipuAiClient]:
    sdk = ZhipuAiClient(
        api_key=server.api_key, base_url=server.paas_url.rstrip("/"), max_retries=0, timeout=120
    )
    yield sdk
    sdk.close()


def test_zai_sdk_embeddings(zai: ZhipuAiClient) -> None:
    response = zai.embeddings.create(model="embedding-3", input=["你好，世界", "hello world"], dimensions=256)
    assert [len(d.embedding) for d in response.data] == [256, 256]
    assert response.model == "embedding-3" and response.usage.prompt_tokens > 0


def test_langchain_openai_embeddings(server: GlmServe) -> None:
    # check_embedding_ctx_length=False: LangChain would otherwise tokenize with tiktoken's OpenAI
    # vocabulary (a download) and send those ids, which mean nothing to another model.
    embeddings = OpenAIEmbeddings(model="embedding-2", base_url=server.v1_url, api_key=server.api_key,
                                  check_embedding_ctx_length=False, max_retries=0)  # fmt: skip
    documents = embeddings.embed_documents(["The cat sits on the mat.", "Stocks fell sharply."])
    query = embeddings.embed_query("Where is the cat?")
    assert [len(v) for v in documents] == [384, 384] and len(query) == 384
    assert cosine(unit(query), unit(documents[0])) > cosine(unit(query), unit(documents[1]))
