"""The playground: sign-in, a streamed chat on the real model with thinking, tools, images, code."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from typing import Any

from api.server_process import GlmServe
from PIL import Image

from .conftest import Guard, screenshot
from .console import choose_model, send, sign_in, wait_answer
from .echo_upstream import EchoUpstream

# Counts the distinct lengths the answer text had while the answer was still streaming.
WATCH_STREAM = """() => {
  window.__seen = [];
  new MutationObserver(() => {
    const all = document.querySelectorAll('.msg-assistant .answer-text');
    const text = all[all.length - 1];
    if (text) window.__seen.push([text.textContent.length, text.classList.contains('streaming')]);
  }).observe(document.getElementById('transcript'), {subtree: true, childList: true, characterData: true});
}"""


def test_sign_in_keeps_the_key_in_session_storage_only(
    page: Any, console_server: GlmServe, guard: Guard
) -> None:
    page.goto("/")
    page.wait_for_selector("#signin-key")
    screenshot(page, "01-sign-in")
    page.fill("#signin-key", "0" * 32 + ".wrongwrongwrong")
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#signin .form-error:text('This key was refused.')")
    page.fill("#signin-key", console_server.api_key)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#page-title:text('Playground')")
    assert page.locator(".who .badge").inner_text() == "admin"
    assert console_server.secret not in page.url
    assert page.context.cookies() == []
    stored = page.evaluate("() => sessionStorage.getItem('glmserve.console.key')")
    assert stored == console_server.api_key
    assert page.evaluate("() => localStorage.length") == 0
    page.click("#signout")
    page.wait_for_selector("#signin-key")
    assert page.evaluate("() => sessionStorage.length") == 0
    assert guard.requests and all(url.startswith(console_server.root) for _, url in guard.requests)


def test_a_stream_arrives_token_by_token_with_thinking_apart(page: Any, console_server: GlmServe) -> None:
    sign_in(page, console_server.api_key)
    choose_model(page, "glm-4.5-flash")
    page.check("#thinking")
    page.fill("#param-max_tokens", "24")
    page.fill("#param-temperature", "0")
    page.evaluate(WATCH_STREAM)
    send(page, "What is 3 + 5? Answer in one short sentence.")
    answer = wait_answer(page)
    seen = page.evaluate("() => window.__seen")
    while_streaming = {length for length, streaming in seen if streaming and length > 0}
    final = answer.locator(".answer-text").inner_text()
    assert len(while_streaming) >= 2, f"the answer did not grow while streaming: {seen}"
    assert max(while_streaming) <= len(final)
    thinking = answer.locator("details.thinking")
    reasoning = thinking.locator(".thinking-text").inner_text()
    assert thinking.is_visible() and reasoning.strip(), "no thinking shown"
    assert reasoning not in final, "the reasoning leaked into the answer"
    stats = {
        s.get_attribute("data-stat"): s.locator(".stat-value").inner_text()
        for s in answer.locator(".stat").all()
    }
    assert int(stats["completion"]) > 0 and int(stats["prompt"]) > 0
    assert stats["TTFT"].endswith(("ms", "s")) and stats["speed"].endswith("tok/s")
    screenshot(page, "02-playground")
    thinking.locator("summary").click()
    assert thinking.get_attribute("open") is None, "the thinking block does not collapse"


def test_turns_build_on_each_other_with_the_parameters_set(
    page: Any, console_server: GlmServe, echo: EchoUpstream
) -> None:
    sign_in(page, console_server.api_key)
    choose_model(page, "echo")
    page.fill("#system", "Be brief.")
    page.fill("#param-seed", "7")
    page.fill("#param-stop", "END")
    page.check("#thinking")
    send(page, "first turn")
    wait_answer(page)
    send(page, "second turn")
    answer = wait_answer(page)
    assert answer.locator(".answer-text").inner_text() == "second turn"
    assert answer.locator(".thinking-text").inner_text() == "The user said: second turn"
    (request,) = [r for r in echo.requests_for("echo") if r.body["messages"][-1]["content"] == "second turn"]
    roles = [m["role"] for m in request.body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert request.body["messages"][2]["content"] == "first turn"
    assert request.body["seed"] == 7 and request.body["stop"] in ("END", ["END"])


def test_tool_calls_are_shown_and_answered_with_a_tool_message(
    page: Any, console_server: GlmServe, echo: EchoUpstream
) -> None:
    sign_in(page, console_server.api_key)
    choose_model(page, "echo")
    page.click(".tools-box summary")
    page.click(".tools-box button:text('Insert example')")
    send(page, "weather in Beijing?")
    answer = wait_answer(page)
    call = answer.locator(".tool-call")
    assert call.locator(".tool-call-name").inner_text() == "get_weather"
    assert '"Beijing"' in call.locator(".tool-call-args").inner_text()
    assert answer.locator('[data-stat="finish"] .stat-value').inner_text() == "tool_calls"
    assert "Result of get_weather" in (page.get_attribute("#prompt", "placeholder") or "")
    send(page, '{"temperature_c": 21}')
    wait_answer(page)
    last = echo.requests_for("echo")[-1].body["messages"]
    assert last[-2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert last[-1] == {"role": "tool", "tool_call_id": "call_fake_0", "content": '{"temperature_c": 21}'}


def test_an_image_reaches_a_vision_model(page: Any, console_server: GlmServe, echo: EchoUpstream) -> None:
    png = io.BytesIO()
    Image.new("RGB", (24, 16), (37, 99, 235)).save(png, format="PNG")
    sign_in(page, console_server.api_key)
    choose_model(page, "glm-4.5-flash")
    assert page.is_disabled("#attach"), "a model that cannot see takes no image"
    choose_model(page, "echo")
    page.set_input_files(
        "#attach", files=[{"name": "dot.png", "mimeType": "image/png", "buffer": png.getvalue()}]
    )
    page.wait_for_selector("#attachments .chip-img")
    send(page, "what is in the picture?")
    wait_answer(page)
    assert page.locator(".msg-user img.thumb").count() == 1
    parts = echo.requests_for("echo")[-1].body["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"]
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_copy_as_code_runs_against_this_server(page: Any, console_server: GlmServe) -> None:
    sign_in(page, console_server.api_key)
    choose_model(page, "echo")
    page.check("#thinking")
    page.fill("#param-max_tokens", "16")
    page.fill("#prompt", "snippet check")
    page.click("#copy-as-code")
    page.wait_for_selector("#code-dialog[open]")
    screenshot(page, "03-copy-as-code")
    python = page.inner_text("#code-snippet")
    page.click("#code-dialog .tab:text('curl')")
    curl = page.inner_text("#code-snippet")
    assert f'base_url="{console_server.root}/api/paas/v4/"' in python
    assert console_server.secret not in python + curl, "the key was written into the code"
    env = {**os.environ, "GLMSERVE_API_KEY": console_server.api_key}
    ran = subprocess.run([sys.executable, "-c", python], env=env, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert "snippet check" in ran.stdout and "completion_tokens" in ran.stdout
    if shutil.which("curl"):
        shell = subprocess.run(["bash", "-c", curl], env=env, capture_output=True, text=True, timeout=120)
        assert shell.returncode == 0 and "data: [DONE]" in shell.stdout, shell.stdout + shell.stderr
