"""Tensors from safetensors into a ``GGUFWriter``, typed the way llama.cpp's converter types them.

The rule (``convert_hf_to_gguf.py``, ``prepare_tensors``): 1-D tensors, norms, biases, position
and token-type embeddings stay F32; every other weight takes the file's type (F16 or Q8_0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import gguf
import numpy as np
from safetensors import safe_open

OUTTYPES = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
            "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}  # fmt: skip
_QUANT = {
    gguf.LlamaFileType.ALL_F32: gguf.GGMLQuantizationType.F32,
    gguf.LlamaFileType.MOSTLY_F16: gguf.GGMLQuantizationType.F16,
    gguf.LlamaFileType.MOSTLY_Q8_0: gguf.GGMLQuantizationType.Q8_0,
}
_ALWAYS_F32 = ("position_embd.weight", "token_types.weight")


class ConversionError(ValueError):
    """The checkpoint is not the one a converter was written for."""


def read_safetensors(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Each tensor of ``path`` as float32, in file order (one tensor in memory at a time)."""
    with safe_open(str(path), framework="np") as source:
        for name in source.keys():  # noqa: SIM118 - safe_open is not a mapping
            yield name, np.asarray(source.get_tensor(name), dtype=np.float32)


def tensor_type(gguf_name: str, data: np.ndarray, ftype: gguf.LlamaFileType) -> gguf.GGMLQuantizationType:
    if data.ndim <= 1 or gguf_name.endswith("_norm.weight") or not gguf_name.endswith(".weight"):
        return gguf.GGMLQuantizationType.F32
    if gguf_name in _ALWAYS_F32:
        return gguf.GGMLQuantizationType.F32
    qtype = _QUANT[ftype]
    if qtype == gguf.GGMLQuantizationType.Q8_0 and data.shape[-1] % 32:
        return gguf.GGMLQuantizationType.F16  # a row must hold whole Q8_0 blocks
    return qtype


def add_tensor(writer: gguf.GGUFWriter, name: str, data: np.ndarray, ftype: gguf.LlamaFileType) -> None:
    qtype = tensor_type(name, data, ftype)
    if qtype == gguf.GGMLQuantizationType.F32:
        writer.add_tensor(name, np.ascontiguousarray(data, dtype=np.float32))
    elif qtype == gguf.GGMLQuantizationType.F16:
        writer.add_tensor(name, np.ascontiguousarray(data, dtype=np.float16))
    else:
        writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)


def map_names(
    arch: gguf.MODEL_ARCH, block_count: int, tensors: Iterator[tuple[str, np.ndarray]],
    skip: Callable[[str], bool],
) -> Iterator[tuple[str, np.ndarray]]:  # fmt: skip
    """``tensors`` under llama.cpp's names for ``arch``; an unknown name is an error, not a drop."""
    names = gguf.get_tensor_name_map(arch, block_count)
    for name, data in tensors:
        if skip(name):
            continue
        mapped = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            raise ConversionError(f"no llama.cpp name for tensor {name!r}")
        yield mapped, data


def write(writer: gguf.GGUFWriter, target: Path) -> None:
    """Write header, metadata and tensors to ``target`` atomically."""
    partial = target.with_suffix(".partial")
    writer.write_header_to_file(path=partial)
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=False)
    writer.close()
    partial.replace(target)
