"""The keys page: create with limits and models, copy the secret shown once, revoke, rotate."""

from __future__ import annotations

from typing import Any

from api.server_process import GlmServe

from .conftest import screenshot
from .console import api, create_key, sign_in


def test_create_copy_and_revoke_a_key(page: Any, console_server: GlmServe) -> None:
    sign_in(page, console_server.api_key, "#/keys")
    page.click("#create-key")
    page.fill("#key-name", "search-team")
    page.fill("#key-rpm", "60")
    page.fill("#key-budget_tokens", "100000")
    page.check('#create-form [name="models"][value="glm-4.5-flash"]')
    page.click("#key-submit")
    page.wait_for_selector("#secret-panel")
    shown = page.inner_text("#secret-value")
    page.click("#secret-panel button:text('Copy key')")
    page.wait_for_selector("#secret-panel button:text('Copied')")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == shown
    key_id = shown.split(".", 1)[0]
    row = page.locator(f'#keys-table tr[data-key-id="{key_id}"]')
    assert row.locator(".badge:text('active')").count() == 1
    assert "60 rpm" in row.inner_text() and "glm-4.5-flash" in row.inner_text()
    screenshot(page, "04-keys")
    with api(console_server, copied) as http:
        me = http.get("/admin/me").json()
    assert (me["id"], me["name"], me["role"], me["rpm"]) == (key_id, "search-team", "user", 60)
    assert me["models"] == ["glm-4.5-flash"] and me["budget_period"] == "month"

    page.reload()  # the secret is shown once: gone after a reload
    page.wait_for_selector(f'#keys-table tr[data-key-id="{key_id}"]')
    assert shown not in page.content()
    revoke = page.locator(f'#keys-table tr[data-key-id="{key_id}"] [data-action="revoke"]')
    revoke.click()
    revoke.click()  # the second click confirms
    page.wait_for_selector(f'#keys-table tr[data-key-id="{key_id}"] .badge:text("revoked")')
    with api(console_server, copied) as http:
        assert http.get("/admin/me").status_code == 401
    log = console_server.log_path.read_text(encoding="utf-8", errors="replace")
    assert shown.split(".", 1)[1] not in log and console_server.secret not in log, "a secret reached the log"


def test_rotate_with_a_grace_period_on_the_key_page(page: Any, console_server: GlmServe) -> None:
    old, key_id = create_key(console_server, name="rotating", tpm=5000)
    sign_in(page, console_server.api_key, f"#/keys/{key_id}")
    page.wait_for_selector("#key-details h2:text('rotating')")
    page.click('#key-details [data-action="rotate"]')
    page.select_option('#key-details select[aria-label="grace period"]', "3600")
    page.click('#key-details [data-action="rotate-confirm"]')
    page.wait_for_selector("#secret-panel")
    new = page.inner_text("#secret-value")
    assert new.split(".", 1)[0] == key_id and new != old
    grace = page.locator("#key-details dt:text('Old secret valid until') + dd")
    page.wait_for_function("el => el.textContent !== '—'", arg=grace.element_handle(), timeout=5000)
    screenshot(page, "05-key")
    for key in (old, new):
        with api(console_server, key) as http:
            assert http.get("/admin/me").status_code == 200, "old (in its grace period) and new both work"


def test_a_user_key_sees_only_itself(page: Any, console_server: GlmServe) -> None:
    mine, my_id = create_key(console_server, name="just-me")
    _, other_id = create_key(console_server, name="someone-else-entirely")
    sign_in(page, mine, "#/keys")
    page.wait_for_selector(f'#keys-table tr[data-key-id="{my_id}"]')
    assert page.locator("#keys-table tbody tr").count() == 1
    assert page.locator("#create-key").count() == 0
    assert page.locator(".who .badge").inner_text() == "user"
    page.goto(f"/#/keys/{other_id}")
    page.wait_for_selector(".empty h3:text('No such API key')")
    page.goto(f"/#/usage?key_id={other_id}")
    page.wait_for_selector("#recent .empty h3:text('Could not read the requests')")
    assert "someone-else-entirely" not in page.content()
    with api(console_server, mine) as http:  # the API refuses, not only the page
        assert http.get(f"/admin/keys/{other_id}").status_code == 404
        assert http.get("/admin/usage", params={"key_id": other_id}).status_code == 404
        assert http.get("/admin/usage/daily", params={"key_id": other_id}).status_code == 404
        assert http.post("/admin/keys", json={"name": "x"}).status_code == 403
