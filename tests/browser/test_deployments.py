"""Models and deployments: live from /health, one request per refresh for the whole table."""

from __future__ import annotations

from typing import Any

from api.server_process import GlmServe

from .conftest import Guard, screenshot
from .console import sign_in

WAIT_REFRESH = "n => document.getElementById('refreshed').dataset.refreshes !== n"


def test_deployments_table_refreshes_with_one_request(
    page: Any, console_server: GlmServe, guard: Guard
) -> None:
    sign_in(page, console_server.api_key, "#/deployments")
    page.wait_for_selector('#deployments-table tr[data-deployment="echo#0"]')
    row = page.locator('#deployments-table tr[data-deployment="echo#0"]')
    assert row.locator(".badge:text('closed')").count() == 1
    assert page.locator('#deployments-table tr[data-model="glm-4.5-flash"]').count() == 1
    screenshot(page, "08-deployments")
    refreshes = page.locator("#refreshed")
    before = len(guard.requests)
    health = guard.count("/health")
    for _ in range(3):
        count = refreshes.get_attribute("data-refreshes")
        page.click("#refresh")
        page.wait_for_function(WAIT_REFRESH, arg=count)
    assert guard.count("/health") - health >= 3
    assert len(guard.requests) - before == guard.count("/health") - health, (
        "a refresh asked for more than /health"
    )
    page.wait_for_function(WAIT_REFRESH, arg=refreshes.get_attribute("data-refreshes"), timeout=12_000)
