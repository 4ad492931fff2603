"""Make the reference vectors the embedding tests compare glmserve's embeddings with (run once).

The reference implementation is sentence-transformers on PyTorch, loading the same checkpoints
glmserve converts to GGUF (the packaged safetensors, before conversion). It needs torch, so it
runs in a venv of its own, never the project's:

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.13.0 sentence-transformers==6.2.0 sentencepiece==0.2.3
    /tmp/refvenv/bin/python tests/embedding_reference/make_reference.py \\
        --model all-minilm-l6-v2=DIR_WITH_MINILM --model embeddinggemma-300m=DIR_WITH_GEMMA

``DIR`` is a checkpoint directory as the packages ship it (``glmserve models sources`` prints
them). The output, ``vectors.json`` beside this script, holds the sentences and, per model, each
sentence's vector as base64 little-endian float32 (what sentence-transformers' ``encode``
returns: pooled, projected and normalized), plus the versions that made them.
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
from pathlib import Path

import numpy as np

# Paraphrase pairs (one meaning, said twice) in English and Chinese; any two sentences of
# different pairs are unrelated. Order matters: pair k is sentences 2k and 2k+1.
PAIRS = [
    ("en", "A man is playing a guitar on stage.",
     "Someone performs music with a guitar in front of an audience."),
    ("en", "The weather today is sunny and warm.", "It is a bright, hot day outside."),
    ("en", "How do I reset my password?", "What are the steps to change a forgotten login password?"),
    ("en", "The stock market fell sharply on Monday.",
     "Share prices dropped steeply at the start of the week."),
    ("en", "The children are playing football in the park.", "Kids are kicking a ball around in the park."),
    ("zh", "今天天气很好，阳光明媚。", "今天是个晴朗的好天气。"),
    ("zh", "我想预订一张去北京的火车票。", "请帮我买一张到北京的高铁票。"),
    ("zh", "这家餐厅的菜非常好吃。", "这个饭馆的饭菜味道很棒。"),
    ("zh", "如何重置我的账户密码？", "忘记密码了应该怎么找回？"),
    ("zh", "股市周一大幅下跌。", "本周初股票价格急剧下滑。"),
]  # fmt: skip
OUT = Path(__file__).with_name("vectors.json")


def encode(model_dir: Path, sentences: list[str]) -> list[str]:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    model = SentenceTransformer(str(model_dir), device="cpu")
    vectors = model.encode(sentences, convert_to_numpy=True, normalize_embeddings=False)
    return [base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode() for v in vectors]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", action="append", required=True, help="NAME=CHECKPOINT_DIR")
    args = parser.parse_args()
    import sentence_transformers
    import torch

    sentences = [s for _, a, b in PAIRS for s in (a, b)]
    languages = [lang for lang, _, _ in PAIRS for _ in (0, 1)]
    models = {}
    for spec in args.model:
        name, _, path = spec.partition("=")
        models[name] = encode(Path(path), sentences)
    made_with = {"torch": torch.__version__, "sentence_transformers": sentence_transformers.__version__,
                 "python": platform.python_version(), "device": "cpu"}  # fmt: skip
    doc = {"made_with": made_with, "sentences": sentences, "languages": languages, "vectors": models}
    OUT.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
