"""One real glmserve process for the whole black-box suite, and the clients that talk to it.

Model loading is expensive, so the server is session-scoped and shared; tests must leave it as
they found it (no revoking the static key, no long generations left running).
Set GLMSERVE_TEST_DATA_DIR to reuse a data dir (and its assembled model) across runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from . import server_process
from .credentials import new_zhipu_key
from .reference_tokens import TokenCounter
from .server_process import GlmServe

REQUEST_TIMEOUT_S = 120.0


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    override = os.environ.get("GLMSERVE_TEST_DATA_DIR")
    if override:
        path = Path(override)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("glmserve-data")


@pytest.fixture(scope="session")
def server(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlmServe]:
    log_path = tmp_path_factory.mktemp("glmserve-log") / "server.log"
    with server_process.start(data_dir, log_path, new_zhipu_key()) as started:
        yield started


@pytest.fixture(autouse=True)
def _server_alive(server: GlmServe) -> Iterator[None]:
    """Fail with the server's own output, rather than a connection error, if it has died."""
    reason = server.dead_reason()
    if reason:
        pytest.fail(reason)
    yield
    reason = server.dead_reason()
    if reason:
        pytest.fail(reason)


@pytest.fixture(scope="session")
def client(server: GlmServe) -> Iterator[openai.OpenAI]:
    """The openai SDK on the Zhipu base path; no retries, so every error surfaces as it came."""
    with openai.OpenAI(
        api_key=server.api_key, base_url=server.paas_url, max_retries=0, timeout=REQUEST_TIMEOUT_S
    ) as sdk:
        yield sdk


@pytest.fixture(scope="session")
def v1_client(server: GlmServe) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        api_key=server.api_key, base_url=server.v1_url, max_retries=0, timeout=REQUEST_TIMEOUT_S
    ) as sdk:
        yield sdk


@pytest.fixture(scope="session")
def http(server: GlmServe) -> Iterator[httpx.Client]:
    """Raw HTTP on the Zhipu base path, authenticated with the static key."""
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.paas_url, headers=headers, timeout=REQUEST_TIMEOUT_S) as raw:
        yield raw


@pytest.fixture(scope="session")
def token_counter(server: GlmServe) -> TokenCounter:
    """The server's own GGUF, loaded a second time in this process, as an independent tokenizer."""
    assert server.model_path.is_file(), f"the server did not assemble {server.model_path}"
    return TokenCounter(server.model_path)
