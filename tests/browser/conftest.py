"""The console in a real headless Chromium: Debian's ``chromium`` driven by ``playwright``.

Playwright's own browser download cannot be reached, so the suite launches the system browser
through ``executable_path``. Where it is missing the tests are skipped, except under CI
(``CI=true``), where a missing browser fails the run (``.ci/run`` installs it with apt-get).

One glmserve serves the suite: ``glm-4.5-flash`` on the embedded model, and ``echo``, an
upstream deployment on a scripted server (``echo_upstream``) that can see images. Every page
request is checked against the server's origin: any other address is aborted and fails the test.
Screenshots go to ``tests/browser/artifacts/`` (git-ignored).

The fixtures are package-scoped: playwright's sync API runs an event loop in this thread while
it is open, which would break ``asyncio.run`` in the suites that come after this one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api import server_process
from api.credentials import new_zhipu_key
from api.server_process import GlmServe
from api.upstream_gateway import model_table

from .echo_upstream import EchoUpstream

CHROMIUM = Path(os.environ.get("GLMSERVE_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
VIEWPORT = {"width": 1440, "height": 900}


def _missing(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"Chromium is required under CI=true: {why}", pytrace=False)
    pytest.skip(f"Chromium unavailable: {why}")


@pytest.fixture(scope="package")
def playwright_api() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _missing(f"the playwright package is not installed ({exc})")
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} does not exist (apt-get install -y chromium)")
    with sync_playwright() as api:
        yield api


@pytest.fixture(scope="package")
def browser(playwright_api: Any) -> Iterator[Any]:
    launched = playwright_api.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture(scope="package")
def echo() -> Iterator[EchoUpstream]:
    with EchoUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="package")
def console_server(tmp_path_factory: pytest.TempPathFactory, echo: EchoUpstream) -> Iterator[GlmServe]:
    tmp = tmp_path_factory.mktemp("console")
    deployment = {"kind": "openai", "base_url": echo.base_url, "model": "echo", "vision": True}
    table = model_table({"glm-4.5-flash": {}, "echo": {"vision": True, "deployments": [deployment]}})
    config = tmp / "console.toml"
    config.write_text(table, encoding="utf-8")
    data = tmp / "data"
    _reuse_model(data)
    with server_process.start(
        data, tmp / "server.log", new_zhipu_key(), None, ["--config", str(config)]
    ) as srv:
        yield srv


def _reuse_model(data: Path) -> None:
    """A fresh data dir (no keys or usage from an earlier run), with GLMSERVE_TEST_DATA_DIR's model."""
    (data / "models").mkdir(parents=True)
    override = os.environ.get("GLMSERVE_TEST_DATA_DIR")
    source = Path(override) / server_process.MODEL_FILE if override else None
    if source is not None and source.is_file():
        (data / server_process.MODEL_FILE).symlink_to(source.resolve())


@pytest.fixture(autouse=True)
def _server_alive(console_server: GlmServe) -> Iterator[None]:
    yield
    reason = console_server.dead_reason()
    if reason:
        pytest.fail(reason)


class Guard:
    """Every request the page makes; those to another origin are aborted and listed."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.requests: list[tuple[str, str]] = []
        self.foreign: list[str] = []

    def route(self, route: Any) -> None:
        url = route.request.url
        self.requests.append((route.request.method, url))
        if url == self.origin or url.startswith(self.origin + "/") or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def count(self, path: str) -> int:
        return sum(1 for _, url in self.requests if url.split("?")[0] == self.origin + path)


@pytest.fixture
def guard(console_server: GlmServe) -> Guard:
    return Guard(console_server.root)


@pytest.fixture
def context(browser: Any, console_server: GlmServe, guard: Guard) -> Iterator[Any]:
    ctx = browser.new_context(base_url=console_server.root, viewport=VIEWPORT)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=console_server.root)
    ctx.route("**/*", guard.route)
    try:
        yield ctx
    finally:
        ctx.close()
    assert guard.foreign == [], f"the page reached outside its origin: {guard.foreign}"


@pytest.fixture
def page(context: Any) -> Iterator[Any]:
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("dialog", lambda dialog: (errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    tab.on("console", lambda msg: _csp_violation(msg, errors))
    tab.set_default_timeout(30_000)
    yield tab
    assert errors == [], f"the page raised errors or opened dialogs: {errors}"


def _csp_violation(message: Any, errors: list[str]) -> None:
    """The Content-Security-Policy refused something the console itself asked for."""
    if "Content Security Policy" in message.text:
        errors.append(f"console: {message.text}")


def screenshot(page: Any, name: str, *, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
