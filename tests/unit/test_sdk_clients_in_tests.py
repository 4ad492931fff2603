"""Every SDK client the tests build has ``max_retries=0``.

The SDKs retry a 429 or 5xx twice by default, so a test with a default client passes through an
intermittent failure it should have seen. This reads the test sources, so a new client without
the setting fails here rather than hiding a flaky server.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
CLIENTS = {
    "OpenAI",
    "AsyncOpenAI",
    "ZhipuAI",
    "ZhipuAiClient",
    "ZaiClient",
    "Anthropic",
    "AsyncAnthropic",
    "ChatAnthropic",
}


def client_calls(path: Path) -> list[ast.Call]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in CLIENTS:
                calls.append(node)
    return calls


SOURCES = sorted(p for p in TESTS.rglob("*.py") if client_calls(p))


def test_the_scan_finds_the_clients() -> None:
    names = {p.name for p in SOURCES}
    assert {"conftest.py", "test_docs_examples.py", "test_sdk_zhipuai.py", "test_keys_cli.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(TESTS)) for p in SOURCES])
def test_every_sdk_client_has_no_retries(path: Path) -> None:
    for call in client_calls(path):
        where = f"{path.name}:{call.lineno}"
        retries = [k.value for k in call.keywords if k.arg == "max_retries"]
        assert retries, f"{where}: an SDK client without max_retries=0"
        if isinstance(retries[0], ast.Constant):
            assert retries[0].value == 0, f"{where}: max_retries={retries[0].value}"
