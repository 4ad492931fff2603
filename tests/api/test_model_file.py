"""The default model file is verified against its SHA-256 before every load.

A data directory whose GGUF differs from the published file by one byte must stop ``serve``
before anything is loaded, with a message naming the file and both hashes, and leave the file as
it is (the README: delete it and glmserve assembles it again).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from glmserve.engines.llamacpp.models import QWEN_CODER_05B

from . import server_process
from .credentials import new_zhipu_key
from .server_process import MODEL_FILE, GlmServe

SHA256 = QWEN_CODER_05B.sha256  # the file corrupted below (MODEL_FILE) is the 0.5B


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(4 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def test_a_corrupt_model_file_is_refused(server: GlmServe, tmp_path: Path) -> None:
    corrupt = tmp_path / "data" / MODEL_FILE
    corrupt.parent.mkdir(parents=True)
    shutil.copyfile(server.model_path, corrupt)
    with corrupt.open("r+b") as fh:  # one bit, in the middle of the tensor data
        fh.seek(corrupt.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0x01]))
    actual = sha256(corrupt)
    assert actual != SHA256

    with pytest.raises(RuntimeError) as refused:
        server_process.start(tmp_path / "data", tmp_path / "server.log", new_zhipu_key()).stop()

    log = (tmp_path / "server.log").read_text(encoding="utf-8", errors="replace")
    assert "glmserve exited with status" in str(refused.value)
    assert f"{corrupt} has SHA-256 {actual}, expected {SHA256}; refusing to load it" in log, log[-3000:]
    assert f"loaded {corrupt}" not in log, "nothing was loaded"
    assert sha256(corrupt) == actual, "the file is left as it was"
