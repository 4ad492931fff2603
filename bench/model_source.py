"""Which GGUF the benchmark serves: the file glmserve serves for a model name, or one given.

glmserve is asked by public name (``--model``, default ``glm-4.6``); the contenders that load a
GGUF themselves (llama.cpp's server, xllamacpp in-process, llama-cpp-python) need the same file.
Without ``--gguf`` it is resolved the way glmserve resolves it, from glmserve's own settings under
the benchmark's controlled environment (the data directory and nothing else; see
``glmserve_env``), in a subprocess so that this process's environment plays no part: a configured
``gguf`` path, or the packaged model assembled and SHA-256-checked in the data directory. After
glmserve starts, the benchmark checks that its log names the same file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

# Runs in the subprocess: print the GGUF path of the model named argv[1], as glmserve resolves it.
_RESOLVE = """
import sys
from pathlib import Path
from glmserve.config.settings import load_settings
settings = load_settings()
name = settings.aliases.get(sys.argv[1], sys.argv[1])
entry = next((m for m in settings.models if m.name == name), None)
if entry is None:
    sys.exit(f"glmserve serves no model named {sys.argv[1]!r}")
embedded = [d for d in entry.resolved_deployments() if not d.is_upstream]
if not embedded:
    sys.exit(f"{name} has no embedded deployment: nothing for the direct contenders to load")
if embedded[0].gguf is not None:
    print(embedded[0].gguf)
else:
    from glmserve.engines.llamacpp.models import ensure_packaged, packaged
    print(ensure_packaged(packaged(embedded[0].packaged), settings.data_dir))
"""

_LOADED = re.compile(r"loaded (\S+\.gguf) in ")


class ModelNotFound(RuntimeError):
    """The GGUF could not be resolved; the message says what to pass instead."""


def glmserve_env(data_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any ``GLMSERVE_*``, plus the data directory and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLMSERVE_")}
    return env | {"GLMSERVE_DATA_DIR": str(data_dir)} | (extra or {})


def only_model_env(name: str, gguf: Path) -> dict[str, str]:
    """glmserve settings for a model table of one entry: ``name`` serving ``gguf``, no aliases.

    Like-for-like with llama.cpp's server, which loads one model: every llama.cpp context that has
    run adds its OpenMP threads to one libgomp count, and once that count passes the CPU count
    libgomp spins 100 times instead of 300,000 before a thread sleeps, so the busy model's threads
    sleep and wake at every barrier (measured: 29 tok/s alone, 22 beside an idle 0.5B; README,
    "Several embedded models"). A packaged file keeps its packaged entry (and sampling card).
    """
    from glmserve.engines.llamacpp.models import PACKAGED

    source = {"packaged": gguf.stem} if gguf.stem in PACKAGED else {"gguf": str(gguf)}
    entry = {"name": name, **source}
    return {"GLMSERVE_MODELS": json.dumps([entry]), "GLMSERVE_ALIASES": "{}"}


def resolve(model: str, data_dir: Path, gguf: Path | None) -> tuple[Path, str]:
    """(GGUF path, where it came from)."""
    if gguf is not None:
        if not gguf.is_file():
            raise ModelNotFound(f"--gguf {gguf}: no such file")
        return gguf.resolve(), "--gguf"
    done = subprocess.run(
        [sys.executable, "-c", _RESOLVE, model],
        env=glmserve_env(data_dir),
        capture_output=True,
        text=True,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise ModelNotFound(
            f"cannot resolve the GGUF of {model!r} from glmserve's settings "
            f"({done.stderr.strip().splitlines()[-1:] or ['no output']}); pass --gguf PATH"
        )
    return Path(lines[-1]).resolve(), f"glmserve settings for {model} (data dir {data_dir})"


def loaded_by(log: Path) -> list[Path]:
    """The GGUF files a glmserve log says it loaded."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    return [Path(m).resolve() for m in _LOADED.findall(text)]
