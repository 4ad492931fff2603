"""Retrieval quality of the packaged embedding models, in Chinese and in English.

    python bench/embedding_quality.py [--threads N]

A fixed set per language: each query has exactly one relevant passage among all the passages of
its language (topics differ, so the others are unrelated). Each model embeds queries and passages
as given (what ``/embeddings`` does), and, for EmbeddingGemma, also with its own retrieval
prompts (what ``/rerank`` does). Figures: recall@1 (the relevant passage ranks first) and MRR
(mean reciprocal rank of the relevant passage), per language. Models run in-process through
xllamacpp from the prepared model cache (``glmserve prepare-models``).

Output: ``bench/results/embedding-quality-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"

ZH = [
    ("如何办理护照？", "申请护照需要携带身份证和户口本到出入境管理局填写申请表并拍照。"),
    ("北京今天会下雨吗？", "气象台预报北京今天下午有中到大雨，请市民出门携带雨具。"),
    ("怎样做红烧肉？", "五花肉切块焯水，加冰糖炒出糖色，再放酱油和料酒小火炖一个小时。"),
    ("高铁票可以退吗？", "开车前可以在车站或网上办理退票，按离开车时间长短收取退票费。"),
    ("感冒了应该吃什么药？", "普通感冒多休息多喝水，发烧时可以服用退烧药，症状严重应及时就医。"),
    ("股票市场为什么下跌？", "受加息预期和企业盈利下滑影响，周一沪深两市股价普遍走低。"),
    ("猫为什么喜欢晒太阳？", "猫咪的祖先生活在沙漠，晒太阳可以帮助它们保持体温并节省能量。"),
    ("Python 怎么读取文件？", "在 Python 中可以用 open 函数打开文件，再调用 read 方法读取内容。"),
    ("长城有多长？", "根据国家文物局的测量，明长城全长约八千八百多公里。"),
    ("怎么提高睡眠质量？", "保持规律作息，睡前避免使用手机，卧室保持安静和黑暗有助于入睡。"),
    ("新能源汽车的续航有多远？", "目前主流纯电动车在标准工况下的续航里程大多在四百到七百公里之间。"),
    ("孩子几岁开始上小学？", "按照义务教育法，儿童年满六周岁应当入学接受义务教育。"),
    ("绿茶和红茶有什么区别？", "绿茶不经过发酵，保留了较多茶多酚；红茶是全发酵茶，口感更醇厚。"),
    ("信用卡逾期会怎样？", "信用卡逾期会产生罚息和滞纳金，还可能影响个人征信记录。"),
    ("如何学习一门外语？", "每天坚持听说读写练习，多和母语者交流，是掌握外语的有效方法。"),
    ("熊猫吃什么？", "大熊猫的食物百分之九十九是竹子，偶尔也会吃一些小动物。"),
]
EN = [
    (
        "How do I renew my passport?",
        "To renew a passport, fill in the renewal form and mail it with your old passport and a photo.",
    ),
    (
        "Will it rain in London tomorrow?",
        "Forecasters expect heavy showers across London tomorrow afternoon.",
    ),
    ("How long should I boil an egg?", "For a soft yolk boil the egg for six minutes; for a hard one, ten."),
    (
        "Can I get a refund for my train ticket?",
        "Tickets can be refunded before departure, minus a small fee.",
    ),
    (
        "What should I take for a cold?",
        "Rest, drink fluids and take paracetamol for fever; see a doctor if it worsens.",
    ),
    (
        "Why did stocks fall today?",
        "Shares slid after the central bank signalled further interest rate rises.",
    ),
    (
        "Why do cats sleep so much?",
        "Cats are crepuscular hunters and conserve energy by sleeping up to sixteen hours a day.",
    ),
    (
        "How do I read a file in Python?",
        "Open the file with open() and call read() on the file object to get its text.",
    ),
    (
        "How tall is Mount Everest?",
        "Everest rises about 8,849 metres above sea level, the highest peak on Earth.",
    ),
    (
        "How can I sleep better?",
        "Keep a regular schedule, avoid screens before bed and keep the bedroom dark.",
    ),
    (
        "How far can an electric car drive?",
        "Most current electric cars travel between 400 and 700 kilometres per charge.",
    ),
    (
        "At what age do children start school?",
        "In many countries compulsory schooling begins at the age of five or six.",
    ),
    (
        "What is the difference between green and black tea?",
        "Green tea is unoxidised, while black tea is fully oxidised and stronger.",
    ),
    (
        "What happens if I miss a credit card payment?",
        "A missed payment brings a late fee and interest and can hurt your credit score.",
    ),
    (
        "What is the best way to learn a language?",
        "Practise every day and speak with native speakers as often as you can.",
    ),
    ("What do pandas eat?", "Giant pandas live almost entirely on bamboo, eating up to 38 kilograms a day."),
]
VARIANTS = [
    ("embedding-2 (all-MiniLM-L6-v2)", "all-minilm-l6-v2", "", ""),
    ("embedding-3 (EmbeddingGemma-300M)", "embeddinggemma-300m", "", ""),
    (
        "embedding-3 with retrieval prompts (as /rerank)",
        "embeddinggemma-300m",
        "task: search result | query: ",
        "title: none | text: ",
    ),
]


def embedder(gguf: Path, threads: int, batch: int) -> Any:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.embedding = True
    params.n_ctx = params.n_batch = params.n_ubatch = batch
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    params.verbosity = -1
    return xllamacpp.Server(params)


def vectors(server: Any, texts: list[str]) -> np.ndarray:
    answer = server.handle_embeddings({"input": texts})
    return np.asarray([d["embedding"] for d in answer["data"]], dtype=np.float64)


def scores(server: Any, pairs: list[tuple[str, str]], query_prefix: str, doc_prefix: str) -> dict[str, float]:
    queries = vectors(server, [query_prefix + q for q, _ in pairs])
    passages = vectors(server, [doc_prefix + p for _, p in pairs])
    similarity = queries @ passages.T  # unit vectors: cosine
    ranks = [1 + int((row > row[i]).sum()) for i, row in enumerate(similarity)]
    return {
        "recall_at_1": sum(r == 1 for r in ranks) / len(ranks),
        "mrr": float(np.mean([1 / r for r in ranks])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from glmserve.engines.llamacpp.packaged_embeddings import default_cache, packaged

    results: dict[str, Any] = {"date": datetime.date.today().isoformat(), "queries_per_language": len(ZH)}
    servers: dict[str, Any] = {}
    for label, name, query_prefix, doc_prefix in VARIANTS:
        if name not in servers:
            servers[name] = embedder(default_cache() / packaged(name).file, args.threads, 512)
        results[label] = {
            "zh": scores(servers[name], ZH, query_prefix, doc_prefix),
            "en": scores(servers[name], EN, query_prefix, doc_prefix),
        }
        print(label, json.dumps(results[label]))
    out = RESULTS / f"embedding-quality-{results['date']}.json"
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
