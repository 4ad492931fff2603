"""The usage page draws its charts from real daily sums and pages through filtered requests."""

from __future__ import annotations

from typing import Any

from api.server_process import GlmServe

from .conftest import screenshot
from .console import api, create_key, echo_chat, sign_in

# Pixels of the requests chart's canvas drawn in one of the series' colours.
BAR_PIXELS = """() => {
  const canvas = document.querySelector('#chart-requests canvas');
  const {width, height} = canvas;
  const data = canvas.getContext('2d').getImageData(0, 0, width, height).data;
  const palette = [[37, 99, 235], [22, 163, 74], [245, 158, 11]];
  let count = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] < 200) continue;
    const d = (c, k) => Math.abs(data[i + k] - c);
    const near = ([r, g, b]) => d(r, 0) + d(g, 1) + d(b, 2) < 30;
    if (palette.some(near)) count++;
  }
  return count;
}"""


def test_usage_charts_and_paged_filtered_requests(page: Any, console_server: GlmServe) -> None:
    key, key_id = create_key(console_server, name="usage-page", models=["echo"])
    for i in range(26):
        assert echo_chat(console_server, key, f"row {i}").status_code == 200
    refused = echo_chat(console_server, key, "not allowed", model="glm-4.5-flash")
    assert refused.status_code == 403
    with api(console_server) as http:
        daily = http.get("/admin/usage/daily", params={"limit": 10000}).json()["data"]
        mine = http.get("/admin/usage", params={"key_id": key_id, "limit": 100}).json()["data"]
    total = sum(d["requests"] for d in daily)
    assert len(mine) == 27

    sign_in(page, console_server.api_key, "#/usage")
    page.wait_for_selector("#chart-requests canvas")
    assert page.inner_text("#tile-requests .tile-value") == f"{total:,}"
    assert page.evaluate(BAR_PIXELS) > 50, "the requests chart drew no bars"
    legend = page.inner_text("#chart-requests .u-legend")
    assert "echo" in legend
    page.wait_for_selector("#requests-table")
    screenshot(page, "06-usage", full_page=True)

    page.fill("#filter-key_id", key_id)
    page.click("#recent-filters button[type=submit]")
    page.wait_for_selector("#page-range:text('rows 1–25')")
    assert page.locator("#requests-table tbody tr").count() == 25
    page.click("#page-next")
    page.wait_for_selector("#page-range:text('rows 26–27')")
    assert page.is_disabled("#page-next") and not page.is_disabled("#page-prev")
    page.select_option("#filter-status", "error")
    page.click("#recent-filters button[type=submit]")
    page.wait_for_selector("#page-range:text('rows 1–1')")
    assert page.locator("#requests-table tbody tr .badge").first.inner_text() == "403"
    wanted = mine[5]["request_id"]
    page.select_option("#filter-status", "")
    page.fill("#filter-request_id", wanted)
    page.click("#recent-filters button[type=submit]")
    page.wait_for_selector(f'#requests-table tr[data-request-id="{wanted}"]')
    assert page.locator("#requests-table tbody tr").count() == 1

    page.select_option("#usage-group", "key")
    link = page.locator(f'#usage-breakdown a[href="#/keys/{key_id}"]')
    assert link.inner_text() == f"usage-page · {key_id[:6]}", "keys are shown by name"
