"""Per-request usage rows filtered by status and read a page at a time (the console's requests table)."""

from __future__ import annotations

from typing import Any

import pytest
from databases import with_store
from test_accounting_store import row

from glmserve.errors import GlmError
from glmserve.frontends.admin import UsageParams
from glmserve.frontends.validation import parse
from glmserve.store.db import Store
from glmserve.store.usage import UsageQuery, UsageStore

STATUSES = [200, 200, 429, 401, 500, 200, 503]


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, None), ("429", (429, 430)), ("4xx", (400, 500)), ("5xx", (500, 600)), ("error", (400, 600))],
)
def test_status_filters_are_half_open_ranges(given: str | None, expected: tuple[int, int] | None) -> None:
    assert parse(UsageParams, {} if given is None else {"status": given}).status_range() == expected


@pytest.mark.parametrize("bad", [{"status": "42"}, {"status": "6xx"}, {"status": "ok"}, {"offset": "-1"}])
def test_bad_status_or_offset_is_a_400_naming_the_field(bad: dict[str, str]) -> None:
    with pytest.raises(GlmError) as caught:
        parse(UsageParams, bad)
    assert caught.value.status == 400 and next(iter(bad)) in str(caught.value)


def test_pages_and_status_ranges(db_url: str) -> None:
    async def body(store: Store) -> dict[str, Any]:
        usage = UsageStore(store)
        await usage.write([row(i, status=s) for i, s in enumerate(STATUSES)])
        pages = [await usage.events_page(UsageQuery(limit=3, offset=o)) for o in (0, 3, 6)]
        return {
            "pages": [([r["id"] for r in rows], more) for rows, more in pages],
            "errors": await usage.events(UsageQuery(status=(400, 600))),
            "5xx": await usage.events(UsageQuery(status=(500, 600))),
            "429": await usage.events(UsageQuery(status=(429, 430))),
            "daily": await usage.daily(UsageQuery(status=(500, 600))),
        }

    out = with_store(db_url, body)
    assert out["pages"] == [(["r6", "r5", "r4"], True), (["r3", "r2", "r1"], True), (["r0"], False)]
    assert [r["id"] for r in out["errors"]] == ["r6", "r4", "r3", "r2"]
    assert [r["status"] for r in out["5xx"]] == [503, 500]
    assert [r["id"] for r in out["429"]] == ["r2"]
    assert sum(d["requests"] for d in out["daily"]) == len(STATUSES), "daily sums have no status to filter"
