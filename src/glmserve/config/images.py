"""Settings of image inputs (see ``Settings.images``)."""

from __future__ import annotations

from pydantic import Field

from glmserve.config.strict import Section


class ImageSettings(Section):
    """Images reach only models that can see; these bound what one request may bring."""

    max_per_request: int = Field(8, ge=1, le=150, description="image parts in one request at most")
    fetch: bool = Field(False, description="fetch http(s) image URLs; off: only base64 and data URLs")
    fetch_timeout_s: float = Field(10.0, gt=0, description="one image fetch, redirects included")
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="hosts fetched even when they resolve to private addresses (intranets, tests)",
    )
