"""EmbeddingGemma (a sentence-transformers ``Gemma3TextModel``) as a GGUF of architecture
``gemma-embedding``.

Follows ``EmbeddingGemma`` in llama.cpp's ``convert_hf_to_gguf.py`` run with
``--sentence-transformers-dense-modules``: Gemma 3 hyperparameters with the checkpoint's own
sliding window, the SentencePiece vocabulary with the tokenizer config's added tokens (special →
control), RMS norms stored as ``1 + w`` (Gemma3RMSNorm scales by ``1 + weight``), the pooling
module's type, and the two Dense projections (``2_Dense``, ``3_Dense``) as ``dense_2``/``dense_3``
with their feature sizes, so llama.cpp computes what sentence-transformers computes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from glmserve.engines.llamacpp.convert.bert import pooling_type
from glmserve.engines.llamacpp.convert.tensors import (
    OUTTYPES,
    ConversionError,
    add_tensor,
    map_names,
    read_safetensors,
    write,
)

ARCH = gguf.MODEL_ARCH.GEMMA_EMBEDDING
_LOOKS_SPECIAL = ("<pad>", "<mask>", "<2mass>", "[@BOS@]")


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _looks_special(token: str) -> bool:
    """convert_hf_to_gguf.py's ``does_token_look_special`` for the Gemma family."""
    return (
        token in _LOOKS_SPECIAL
        or (token.startswith("<|") and token.endswith("|>"))
        or (token.startswith("<unused") and token.endswith(">"))
    )


def vocabulary(model_dir: Path, vocab_size: int) -> tuple[list[bytes], list[float], list[int]]:
    from sentencepiece import SentencePieceProcessor

    sp = SentencePieceProcessor()
    sp.LoadFromFile(str(model_dir / "tokenizer.model"))
    tokens = [f"[PAD{i}]".encode() for i in range(vocab_size)]
    scores = [-10000.0] * vocab_size
    types = [int(gguf.TokenType.UNUSED)] * vocab_size
    for i in range(min(sp.vocab_size(), vocab_size)):
        kind = gguf.TokenType.NORMAL
        if sp.IsUnknown(i):
            kind = gguf.TokenType.UNKNOWN
        elif sp.IsControl(i):
            kind = gguf.TokenType.CONTROL
        elif sp.IsUnused(i):
            kind = gguf.TokenType.UNUSED
        elif sp.IsByte(i):
            kind = gguf.TokenType.BYTE
        tokens[i], scores[i], types[i] = sp.IdToPiece(i).encode(), sp.GetScore(i), int(kind)
    _added_tokens(model_dir, vocab_size, tokens, scores, types)
    return tokens, scores, types


def _added_tokens(model_dir: Path, vocab_size: int, tokens: list[bytes], scores: list[float],
                  types: list[int]) -> None:  # fmt: skip
    added_file = model_dir / "added_tokens.json"
    added = _json(added_file) if added_file.is_file() else {}
    for text, i in added.items():
        if i < vocab_size:
            tokens[i], scores[i], types[i] = text.encode(), -1000.0, int(gguf.TokenType.USER_DEFINED)
    decoder = _json(model_dir / "tokenizer_config.json").get("added_tokens_decoder", {})
    for key, data in decoder.items():
        i, text = int(key), data["content"]
        if i >= vocab_size:
            continue
        if data.get("special") or _looks_special(text):
            types[i] = int(gguf.TokenType.CONTROL)
        else:
            text = text.replace("\u2581", " ")  # llama.cpp wants user-defined spaces pre-normalized
            types[i] = int(gguf.TokenType.USER_DEFINED)
        tokens[i], scores[i] = text.encode(), -1000.0


def dense_modules(model_dir: Path) -> list[tuple[str, Path, int, int]]:
    """(gguf prefix, weights, in, out) for each Dense module, in pipeline order (2_Dense, 3_Dense)."""
    found = []
    for module in _json(model_dir / "modules.json"):
        if not module["type"].endswith("Dense"):
            continue
        conf = _json(model_dir / module["path"] / "config.json")
        if conf.get("bias") or not conf["activation_function"].endswith("Identity"):
            raise ConversionError(
                f"{module['path']}: llama.cpp applies Dense layers without bias or activation"
            )
        prefix = "dense_2" if module["path"] == "2_Dense" else "dense_3"
        found.append((prefix, model_dir / module["path"] / "model.safetensors", conf["in_features"],
                      conf["out_features"]))  # fmt: skip
    return found


def _parameters(writer: gguf.GGUFWriter, hp: dict[str, Any], model_dir: Path) -> None:
    writer.add_context_length(hp["max_position_embeddings"])
    writer.add_embedding_length(hp["hidden_size"])
    writer.add_block_count(hp["num_hidden_layers"])
    writer.add_feed_forward_length(hp["intermediate_size"])
    writer.add_head_count(hp["num_attention_heads"])
    writer.add_layer_norm_rms_eps(hp["rms_norm_eps"])
    writer.add_key_length(hp["head_dim"])
    writer.add_value_length(hp["head_dim"])
    writer.add_rope_freq_base(hp["rope_theta"])
    writer.add_sliding_window(hp["sliding_window"])
    writer.add_head_count_kv(hp["num_key_value_heads"])
    if hp.get("rope_scaling") is not None or hp.get("attn_logit_softcapping") is not None:
        raise ConversionError("rope scaling and logit soft-capping are not part of EmbeddingGemma")
    for prefix, _, n_in, n_out in dense_modules(model_dir):
        writer.add_dense_features_dims(prefix, n_in, n_out)
    writer.add_pooling_type(pooling_type(model_dir))


def convert_embedding_gemma(
    model_dir: Path, target: Path, outtype: str = "f16", name: str | None = None
) -> None:
    hp = _json(model_dir / "config.json")
    if hp.get("architectures") != ["Gemma3TextModel"] or not hp.get("use_bidirectional_attention"):
        raise ConversionError(f"{model_dir} is not an EmbeddingGemma checkpoint")
    ftype = OUTTYPES[outtype]
    writer = gguf.GGUFWriter(None, gguf.MODEL_ARCH_NAMES[ARCH])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name or model_dir.name)
    _parameters(writer, hp, model_dir)
    writer.add_file_type(ftype)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    tokens, scores, types = vocabulary(model_dir, hp["vocab_size"])
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    gguf.SpecialVocab(model_dir, n_vocab=len(tokens)).add_to_gguf(writer, quiet=True)
    writer.add_add_space_prefix(False)
    for prefix, weights, _, _ in dense_modules(model_dir):
        for _, data in read_safetensors(weights):
            add_tensor(writer, f"{prefix}.weight", data, ftype)
    tensors = read_safetensors(model_dir / "model.safetensors")
    for gguf_name, data in map_names(ARCH, hp["num_hidden_layers"], tensors, lambda _: False):
        if gguf_name == "token_embd.weight":
            data = data[: len(tokens)]
        if gguf_name.endswith("norm.weight"):
            data = data + np.float32(1.0)
        add_tensor(writer, gguf_name, data, ftype)
    write(writer, target)
