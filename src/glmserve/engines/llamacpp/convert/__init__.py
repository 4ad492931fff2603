"""Torch-free conversion of sentence-transformers checkpoints to GGUF for llama.cpp.

llama.cpp's own ``convert_hf_to_gguf.py`` needs torch and transformers; these converters need
only ``gguf`` (llama.cpp's own Python package: its tensor-name map, special-vocabulary reader and
writer), ``safetensors`` and ``numpy``, and follow the same conventions (architecture keys, tensor
names, which tensors stay F32, the BERT "phantom space" vocabulary, Gemma's ``1 + w`` norms). The
output is deterministic, so a converted file can be checked against a published SHA-256.
"""
