"""The embedded embedding models against their reference implementation, and what they are for.

``tests/embedding_reference/vectors.json`` holds sentence-transformers' own vectors for a fixed
sentence set (made once by ``make_reference.py``, which says how); glmserve's GGUF conversion
served by llama.cpp must agree to a cosine of 0.999 on every sentence. The set is paraphrase
pairs in English and Chinese: each sentence must be closer to its paraphrase than to any
unrelated sentence of its language (MiniLM, an English model, is held to that in English only).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

REFERENCE = Path(__file__).resolve().parents[1] / "embedding_reference" / "vectors.json"
MODELS = {"embedding-2": "all-minilm-l6-v2", "embedding-3": "embeddinggemma-300m"}
MIN_COSINE = 0.999


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(REFERENCE.read_text(encoding="utf-8"))
    return doc


def served(client: openai.OpenAI, model: str, sentences: list[str]) -> np.ndarray:
    response = client.embeddings.create(model=model, input=sentences, encoding_format="float")
    return np.asarray([d.embedding for d in response.data], dtype=np.float64)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_vectors_match_the_reference_implementation(
    client: openai.OpenAI, reference: dict[str, Any], model: str
) -> None:
    got = served(client, model, reference["sentences"])
    want = np.asarray(
        [np.frombuffer(base64.b64decode(v), dtype="<f4") for v in reference["vectors"][MODELS[model]]]
    )
    cosines = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert cosines.min() >= MIN_COSINE, dict(
        zip(reference["sentences"], cosines.round(5).tolist(), strict=True)
    )


@pytest.mark.parametrize(
    ("model", "language"), [("embedding-2", "en"), ("embedding-3", "en"), ("embedding-3", "zh")]
)
def test_paraphrases_rank_above_unrelated_sentences(
    client: openai.OpenAI, reference: dict[str, Any], model: str, language: str
) -> None:
    indices = [i for i, lang in enumerate(reference["languages"]) if lang == language]
    vectors = served(client, model, [reference["sentences"][i] for i in indices])
    similarity = vectors @ vectors.T
    for row, i in enumerate(indices):
        partner = indices.index(i ^ 1)  # pair k is sentences 2k and 2k+1
        others = [similarity[row, col] for col in range(len(indices)) if col not in (row, partner)]
        assert similarity[row, partner] > max(others), reference["sentences"][i]
