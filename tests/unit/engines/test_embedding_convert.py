"""The torch-free BERT converter on a tiny made-up checkpoint: llama.cpp's names, types and keys,
and llama.cpp loads the result and embeds with it."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
from safetensors.numpy import save_file

from glmserve.engines.llamacpp.convert.bert import convert_bert, phantom
from glmserve.engines.llamacpp.convert.tensors import ConversionError, tensor_type

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s", "the"]
HIDDEN, FF, LAYERS = 32, 64, 1


def write_checkpoint(folder: Path) -> None:
    rng = np.random.default_rng(7)
    config = {
        "model_type": "bert",
        "architectures": ["BertModel"],
        "hidden_size": HIDDEN,
        "intermediate_size": FF,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": 2,
        "max_position_embeddings": 16,
        "layer_norm_eps": 1e-12,
        "vocab_size": len(VOCAB),
        "type_vocab_size": 2,
    }
    (folder / "config.json").write_text(json.dumps(config))
    added = [{"id": i, "content": t, "special": True} for i, t in enumerate(VOCAB[:5])]
    tokenizer = {
        "model": {"type": "WordPiece", "vocab": {t: i for i, t in enumerate(VOCAB)}},
        "added_tokens": added,
    }
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]"})
    )
    (folder / "modules.json").write_text(
        json.dumps([{"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"}])
    )
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    shapes = {
        "embeddings.word_embeddings.weight": (len(VOCAB), HIDDEN),
        "embeddings.position_embeddings.weight": (16, HIDDEN),
        "embeddings.token_type_embeddings.weight": (2, HIDDEN),
        "embeddings.LayerNorm.weight": (HIDDEN,),
        "embeddings.LayerNorm.bias": (HIDDEN,),
        "embeddings.position_ids": (1, 16),
        "pooler.dense.weight": (HIDDEN, HIDDEN),
        "pooler.dense.bias": (HIDDEN,),
    }
    layer = "encoder.layer.0."
    for part in (
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
    ):
        shapes[f"{layer}{part}.weight"], shapes[f"{layer}{part}.bias"] = (HIDDEN, HIDDEN), (HIDDEN,)
    shapes[f"{layer}intermediate.dense.weight"], shapes[f"{layer}intermediate.dense.bias"] = (
        (FF, HIDDEN),
        (FF,),
    )
    shapes[f"{layer}output.dense.weight"], shapes[f"{layer}output.dense.bias"] = (HIDDEN, FF), (HIDDEN,)
    for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
        shapes[f"{layer}{norm}.weight"], shapes[f"{layer}{norm}.bias"] = (HIDDEN,), (HIDDEN,)
    tensors = {name: (rng.standard_normal(shape) * 0.1).astype(np.float32) for name, shape in shapes.items()}
    save_file(tensors, str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-bert")
    write_checkpoint(folder)
    target = folder / "tiny.gguf"
    convert_bert(folder, target, "f16", "tiny")
    return target


def test_names_types_and_keys_follow_llama_cpp(converted: Path) -> None:
    reader = gguf.GGUFReader(converted)
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["token_embd.weight"] == "F16" and types["blk.0.ffn_up.weight"] == "F16"
    assert types["position_embd.weight"] == types["token_types.weight"] == "F32"
    assert types["blk.0.attn_output_norm.weight"] == types["blk.0.attn_q.bias"] == "F32"
    assert not any(name.startswith("pooler") or "position_ids" in name for name in types)
    fields = reader.fields
    assert fields["general.architecture"].contents() == "bert"
    assert fields["bert.pooling_type"].contents() == gguf.PoolingType.MEAN.value
    assert fields["bert.attention.causal"].contents() is False
    assert fields["tokenizer.ggml.model"].contents() == "bert"
    assert fields["tokenizer.ggml.tokens"].contents()[:7] == [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "\u2581hello",
        "\u2581world",
    ]
    assert fields["tokenizer.ggml.tokens"].contents()[7] == "s"


def test_the_conversion_is_deterministic(converted: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.gguf"
    convert_bert(converted.parent, again, "f16", "tiny")
    assert again.read_bytes() == converted.read_bytes()


def test_llama_cpp_loads_it_and_embeds(converted: Path) -> None:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(converted)
    params.embedding = True
    params.n_ctx = params.n_batch = params.n_ubatch = 16
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = 1
    params.verbosity = -1
    server = xllamacpp.Server(params)
    answer = server.handle_embeddings({"input": ["hello world", "the worlds"]})
    vectors = np.asarray([d["embedding"] for d in answer["data"]])
    assert vectors.shape == (2, HIDDEN) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    assert answer["usage"]["prompt_tokens"] == 4 + 5  # [CLS] hello world [SEP]; [CLS] the world ##s [SEP]


def test_the_type_rule_and_the_phantom_vocabulary() -> None:
    matrix, vector = np.zeros((64, 64), np.float32), np.zeros(64, np.float32)
    q8 = gguf.LlamaFileType.MOSTLY_Q8_0
    assert tensor_type("blk.0.attn_q.weight", matrix, q8) == gguf.GGMLQuantizationType.Q8_0
    assert tensor_type("blk.0.attn_q.bias", vector, q8) == gguf.GGMLQuantizationType.F32
    assert tensor_type("blk.0.x.weight", np.zeros((4, 30), np.float32), q8) == gguf.GGMLQuantizationType.F16
    assert phantom("##ing", gguf.TokenType.NORMAL) == "ing"
    assert phantom("[CLS]", gguf.TokenType.CONTROL) == "[CLS]"


def test_a_checkpoint_of_another_kind_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    with pytest.raises(ConversionError):
        convert_bert(tmp_path, tmp_path / "x.gguf")
