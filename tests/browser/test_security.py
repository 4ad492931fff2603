"""Security of the console: headers, inert model output and stored content, one origin only."""

from __future__ import annotations

from typing import Any

import httpx
from api.server_process import GlmServe

from .conftest import Guard, screenshot
from .console import choose_model, create_key, send, sign_in, wait_answer

PAYLOAD = "<img src=x onerror=alert(1)>"
LINK = "[click me](javascript:alert(2)) javascript:alert(3)"
OUTSIDE = "![tracker](http://203.0.113.7/pixel.png)"
# Elements the payloads would have made, had anything parsed them as HTML or markdown.
INJECTED = """() => {
  const all = [...document.querySelectorAll('*')];
  const href = (a) => a.getAttribute('href') || '';
  return {
    images: document.querySelectorAll('img').length,
    scriptLinks: [...document.querySelectorAll('a')].filter(a => /^\\s*javascript:/i.test(href(a))).length,
    handlers: all.filter(el => [...el.attributes].some(a => a.name.startsWith('on'))).length,
  };
}"""
NOTHING = {"images": 0, "scriptLinks": 0, "handlers": 0}


def test_headers_forbid_inline_script_framing_and_sniffing(console_server: GlmServe) -> None:
    with httpx.Client(base_url=console_server.root, timeout=30) as http:
        for path in (
            "/",
            "/console",
            "/console/",
            "/console/assets/js/main.js",
            "/console/assets/console.css",
        ):
            response = http.get(path)
            assert response.status_code == 200, path
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "default-src 'none'" in csp
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert "frame-ancestors 'none'" in csp
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["x-content-type-options"] == "nosniff"
        page = http.get("/console")
        assert "<script" in page.text and "<script>" not in page.text, "only external module scripts"
        assert http.get("/console", headers={"if-none-match": page.headers["etag"]}).status_code == 304
        for bad in ("/console/assets/index.html", "/console/assets/../app.py", "/console/assets/nope.js"):
            assert http.get(bad).status_code == 404, bad
        assert "javascript" in http.get("/console/assets/js/main.js").headers["content-type"]


def test_xss_payloads_in_model_output_and_stored_names_stay_inert(
    page: Any, console_server: GlmServe, guard: Guard
) -> None:
    _, key_id = create_key(console_server, name=PAYLOAD)
    sign_in(page, console_server.api_key)
    choose_model(page, "echo")
    page.check("#thinking")
    text = f"{PAYLOAD} {LINK} {OUTSIDE}"
    send(page, text)
    answer = wait_answer(page)
    assert answer.locator(".answer-text").inner_text() == text, "the reply is shown as the text it is"
    assert PAYLOAD in answer.locator(".thinking-text").inner_text()
    assert page.evaluate(INJECTED) == NOTHING
    screenshot(page, "07-xss-inert")
    page.goto("/#/keys")
    row = page.locator(f'#keys-table tr[data-key-id="{key_id}"]')
    row.wait_for()
    assert row.locator(".key-name").inner_text() == PAYLOAD
    page.goto(f"/#/keys/{key_id}")
    page.wait_for_selector("#key-details")
    assert page.inner_text("#page-title") == f"API key “{PAYLOAD}”"
    page.goto("/#/usage")
    page.wait_for_selector("#requests-table")
    assert page.evaluate(INJECTED) == NOTHING
    # The page fixture fails the test on any dialog (alert) or page error; the guard on any
    # request to another origin, such as the tracker pixel.
    assert not any("203.0.113.7" in url for _, url in guard.requests)
