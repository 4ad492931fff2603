"""Strict configuration: an unknown key or registry name stops start-up, naming it and its source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from glmserve.config.check import ConfigError
from glmserve.config.settings import load_settings

GLMSERVE = Path(sys.executable).parent / "glmserve"


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "glmserve.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[limits]\nrmp = 10\n", "unknown setting 'limits.rmp' (in {file})"),
        ("prot = 1\n", "unknown setting 'prot' (in {file})"),
        ("[cache]\nttl = 3\n", "unknown setting 'cache.ttl' (in {file})"),
        ("[engine]\nparalel = 2\n", "unknown setting 'engine.paralel' (in {file})"),
        (
            '[[models]]\nname = "m"\nreasoning_parser = "no-such-parser"\n',
            "invalid setting 'models[0].reasoning_parser' (in {file}): unknown reasoning parser",
        ),
        (
            '[[models]]\nname = "m"\ntool_format = "xml"\n',
            "invalid setting 'models[0].tool_format' (in {file}): unknown tool format 'xml'",
        ),
        (
            '[[models]]\nname = "m"\n[[models.deployments]]\nkind="vllm"\nbase_url="http://h"\nretry=2\n',
            "unknown setting 'models[0].deployments[0].retry' (in {file})",
        ),
    ],
)
def test_a_bad_file_names_the_key_and_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = toml(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value).startswith(message.format(file=path))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GLMSERVE_LIMITS__RMP", "3", "unknown setting 'limits.rmp' (from $GLMSERVE_LIMITS__RMP)"),
        ("GLMSERVE_PROT", "1", "unknown setting 'prot' (from $GLMSERVE_PROT)"),
        ("GLMSERVE_PORT", "eighty", "invalid setting 'port' (from $GLMSERVE_PORT)"),
    ],
)
def test_a_bad_variable_names_itself(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(message)


def test_the_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    path = toml(tmp_path, '[[models]]\nname = "m"\nreasoning_parser = "nope"\n')
    env = {"PATH": "/usr/bin:/bin", "GLMSERVE_DATA_DIR": str(tmp_path / "data")}
    for command in (["models", "--config", str(path)], ["serve", "--config", str(path)]):
        done = subprocess.run([str(GLMSERVE), *command], capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().count("\n") == 0
        assert "models[0].reasoning_parser" in done.stderr and str(path) in done.stderr


def test_a_missing_gguf_fails_start_up_in_one_line(tmp_path: Path) -> None:
    path = toml(tmp_path, f'[[models]]\nname = "m"\ngguf = "{tmp_path / "absent.gguf"}"\n')
    env = {"PATH": "/usr/bin:/bin", "GLMSERVE_DATA_DIR": str(tmp_path / "data"), "GLMSERVE_API_KEY": "a.b"}
    done = subprocess.run(
        [str(GLMSERVE), "serve", "--config", str(path)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr.strip().splitlines()[-1]
        == f"glmserve: cannot start: FileNotFoundError: GGUF not found: {tmp_path / 'absent.gguf'}"
    )
