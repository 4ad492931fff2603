"""The packaged-model registry: assembly from parts, and the size and hash check before a load."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from glmserve.engines.llamacpp import models
from glmserve.engines.llamacpp.models import ModelFileError, PackagedModel

PARTS = [b"GGUF", b"-part-two-", b"three"]
WHOLE = b"".join(PARTS)
TINY = PackagedModel(
    name="tiny", title="Tiny", packages=("tiny-part1", "tiny-part2", "tiny-part3"), version="1.0",
    size=len(WHOLE), sha256=hashlib.sha256(WHOLE).hexdigest(), sampling=models.SamplingDefaults(),
)  # fmt: skip


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    paths = []
    for i, data in enumerate(PARTS, 1):
        path = tmp_path / "site" / f"part{i:02}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    monkeypatch.setattr(models, "part_files", lambda model: paths)
    return paths


def test_assembles_once_in_order_then_verifies(tmp_path: Path, parts: list[Path]) -> None:
    path = models.ensure_packaged(TINY, tmp_path / "data")
    assert path == tmp_path / "data" / "models" / "tiny.gguf" and path.read_bytes() == WHOLE
    parts[0].unlink()  # a second load reads the assembled file, not the parts
    assert models.ensure_packaged(TINY, tmp_path / "data") == path


def test_a_wrong_hash_is_never_assembled(tmp_path: Path, parts: list[Path]) -> None:
    with pytest.raises(ModelFileError, match="SHA-256"):
        models.ensure_packaged(replace(TINY, sha256="0" * 64), tmp_path / "data")
    assert not list((tmp_path / "data" / "models").iterdir()), "no file, not even a partial one"


@pytest.mark.parametrize(("damage", "message"), [(b"x", "bytes, expected"), (b"X" * len(WHOLE), "SHA-256")])
def test_a_damaged_file_is_refused_before_loading(tmp_path: Path, damage: bytes, message: str) -> None:
    path = TINY.path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(damage)
    with pytest.raises(ModelFileError, match=message):
        models.ensure_packaged(TINY, tmp_path)


def test_the_registry_pins_both_models() -> None:
    assert models.packaged().name == "qwen2.5-coder-1.5b-instruct-q4_k_m"
    big, small = models.QWEN_CODER_15B, models.QWEN_CODER_05B
    assert (big.size, len(big.packages), big.version) == (1_117_320_768, 22, "0.2.0")
    assert (small.size, len(small.packages), small.version) == (491_400_064, 6, "0.9.0")
    assert all(len(m.sha256) == 64 for m in (big, small))
    with pytest.raises(ValueError, match="packaged models"):
        models.packaged("nope")
