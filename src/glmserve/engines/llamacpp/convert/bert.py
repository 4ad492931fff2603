"""A sentence-transformers BERT checkpoint (e.g. all-MiniLM-L6-v2) as a GGUF of architecture ``bert``.

Follows ``BertModel`` in llama.cpp's ``convert_hf_to_gguf.py``: non-causal attention, the pooling
of the checkpoint's ``1_Pooling`` module, the WordPiece vocabulary in "phantom space" form (a word
start gets ``▁``, a ``##`` continuation loses its prefix, control tokens stay as they are), the
pooler and ``position_ids`` dropped. ``tokenizer.ggml.pre`` is the name llama.cpp's converter
derives (by hashing a tokenization) for the bert-base-uncased vocabulary; llama.cpp's WordPiece
tokenizer does its own pre-tokenization, so the name is informational.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gguf

from glmserve.engines.llamacpp.convert.tensors import (
    OUTTYPES,
    ConversionError,
    add_tensor,
    map_names,
    read_safetensors,
    write,
)

TOKENIZER_PRE = "jina-v2-en"  # convert_hf_to_gguf.py's name for the bert-base-uncased hash
_DROPPED = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def pooling_type(model_dir: Path) -> gguf.PoolingType:
    """The pooling of the checkpoint's sentence-transformers Pooling module (MEAN, CLS or LAST)."""
    for module in _json(model_dir / "modules.json"):
        if module["type"] == "sentence_transformers.models.Pooling":
            pooling = _json(model_dir / module["path"] / "config.json")
            if pooling.get("pooling_mode_mean_tokens"):
                return gguf.PoolingType.MEAN
            if pooling.get("pooling_mode_cls_token"):
                return gguf.PoolingType.CLS
            if pooling.get("pooling_mode_lasttoken"):
                return gguf.PoolingType.LAST
            raise ConversionError("only MEAN, CLS and LAST pooling are supported")
    raise ConversionError(f"{model_dir}/modules.json names no Pooling module")


def phantom(token: str, toktype: gguf.TokenType) -> str:
    if toktype == gguf.TokenType.CONTROL:
        return token
    return token[2:] if token.startswith("##") else "\u2581" + token


def vocabulary(model_dir: Path, vocab_size: int) -> tuple[list[str], list[gguf.TokenType]]:
    tokenizer = _json(model_dir / "tokenizer.json")
    if tokenizer["model"]["type"] != "WordPiece":
        raise ConversionError("a BERT checkpoint needs a WordPiece tokenizer.json")
    by_id = {i: t for t, i in tokenizer["model"]["vocab"].items()}
    added = {a["id"]: a for a in tokenizer.get("added_tokens", [])}
    tokens: list[str] = []
    types: list[gguf.TokenType] = []
    for i in range(vocab_size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        kind = gguf.TokenType.NORMAL
        if i in added:
            kind = gguf.TokenType.CONTROL if added[i].get("special") else gguf.TokenType.USER_DEFINED
        tokens.append(phantom(by_id[i], kind))
        types.append(kind)
    return tokens, types


def _parameters(writer: gguf.GGUFWriter, hp: dict[str, Any], model_dir: Path) -> None:
    writer.add_block_count(hp["num_hidden_layers"])
    writer.add_context_length(hp["max_position_embeddings"])
    writer.add_embedding_length(hp["hidden_size"])
    writer.add_feed_forward_length(hp["intermediate_size"])
    writer.add_head_count(hp["num_attention_heads"])
    writer.add_layer_norm_eps(hp["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type(pooling_type(model_dir))


def convert_bert(model_dir: Path, target: Path, outtype: str = "f16", name: str | None = None) -> None:
    hp = _json(model_dir / "config.json")
    if hp.get("model_type") != "bert" or hp.get("position_embedding_type", "absolute") != "absolute":
        raise ConversionError(f"{model_dir} is not a BERT checkpoint with absolute positions")
    ftype = OUTTYPES[outtype]
    writer = gguf.GGUFWriter(None, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name or model_dir.name)
    _parameters(writer, hp, model_dir)
    writer.add_file_type(ftype)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    tokens, types = vocabulary(model_dir, hp["vocab_size"])
    writer.add_token_type_count(hp.get("type_vocab_size", 1))
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre(TOKENIZER_PRE)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    gguf.SpecialVocab(model_dir, n_vocab=len(tokens)).add_to_gguf(writer, quiet=True)
    tensors = read_safetensors(model_dir / "model.safetensors")
    for gguf_name, data in map_names(gguf.MODEL_ARCH.BERT, hp["num_hidden_layers"], tensors, _dropped):
        add_tensor(writer, gguf_name, data, ftype)
    write(writer, target)


def _dropped(name: str) -> bool:
    return name in _DROPPED or name.startswith(("cls.predictions", "cls.seq_relationship"))
