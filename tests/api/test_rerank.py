"""POST /rerank (Zhipu's shape): the embedded bi-encoder orders documents by relevance."""

from __future__ import annotations

import httpx
import pytest

DOCUMENTS = [
    "Bananas are a good source of potassium.",
    "Paris is the capital and largest city of France.",
    "法国的首都是巴黎。",
    "The Eiffel Tower was completed in 1889.",
    "Python is a programming language.",
]


def rerank(http: httpx.Client, **body: object) -> dict[str, object]:
    response = http.post("rerank", json={"model": "rerank", **body})
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def test_relevant_documents_come_first_in_english_and_chinese(http: httpx.Client) -> None:
    answer = rerank(http, query="What is the capital of France?", documents=DOCUMENTS)
    results = answer["results"]
    assert isinstance(results, list) and len(results) == len(DOCUMENTS)
    order = [r["index"] for r in results]
    assert set(order[:2]) == {1, 2}, order  # the English and the Chinese answer
    assert order[-1] in (0, 4)
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert "document" not in results[0]
    usage = answer["usage"]
    assert isinstance(usage, dict) and usage["prompt_tokens"] == usage["total_tokens"] > 0
    assert answer["id"] and answer["request_id"] and answer["created"]


def test_chinese_query(http: httpx.Client) -> None:
    results = rerank(http, query="香蕉含有什么营养？", documents=DOCUMENTS)["results"]
    assert isinstance(results, list) and results[0]["index"] == 0


def test_top_n_documents_and_raw_scores(http: httpx.Client) -> None:
    query = "When was the Eiffel Tower built?"
    full = rerank(http, query=query, documents=DOCUMENTS)["results"]
    top = rerank(http, query=query, documents=DOCUMENTS, top_n=2, return_documents=True)["results"]
    raw = rerank(http, query=query, documents=DOCUMENTS, return_raw_scores=True)["results"]
    assert isinstance(full, list) and isinstance(top, list) and isinstance(raw, list)
    assert [r["index"] for r in top] == [r["index"] for r in full[:2]]
    assert top[0]["document"] == DOCUMENTS[top[0]["index"]]
    # The bi-encoder's raw score is the cosine; the relevance score maps it to (1 + cos) / 2.
    for plain, cos in zip(full, raw, strict=True):
        assert abs(plain["relevance_score"] - (1 + cos["relevance_score"]) / 2) < 1e-6


def test_models_show_how_rerank_scores(http: httpx.Client) -> None:
    card = http.get("models/rerank").json()
    assert card["capabilities"] == {
        "kind": "rerank",
        "vision": False,
        "dimensions": None,
        "rerank": "bi-encoder",
    }
    assert http.get("models/embedding-3").json()["capabilities"]["dimensions"] == [768, 512, 256, 128]


BAD = [
    ("no-documents", {"query": "q", "documents": []}, "documents"),
    ("too-many", {"query": "q", "documents": ["d"] * 129}, "documents"),
    ("long-query", {"query": "q" * 4097, "documents": ["d"]}, "query"),
    ("empty-query", {"query": "", "documents": ["d"]}, "query"),
    ("negative-top-n", {"query": "q", "documents": ["d"], "top_n": -1}, "top_n"),
    ("embedding-model", {"model": "embedding-2", "query": "q", "documents": ["d"]}, "model"),
]


@pytest.mark.parametrize(("body", "param"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_requests_are_400s(http: httpx.Client, body: dict[str, object], param: str) -> None:
    response = http.post("rerank", json={"model": "rerank", **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
