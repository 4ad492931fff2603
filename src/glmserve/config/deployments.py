"""The model table's deployments: what serves a public model name, and how failures are handled.

A deployment is either the embedded llama.cpp engine (a GGUF) or an upstream HTTP server that
speaks the OpenAI chat API (kind ``anthropic``: Anthropic's Messages API). Upstream addresses
come only from here, never from a request; keys come from the environment variable that
``api_key_env`` names, never from the file itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from glmserve.config.strict import Section
from glmserve.engines.llamacpp.models import PACKAGED
from glmserve.engines.llamacpp.packaged_embeddings import CATALOG

Kind = Literal["openai", "zhipu", "vllm", "sglang", "llamacpp", "ollama", "anthropic", "embedded"]
UPSTREAM_KINDS: tuple[str, ...] = ("openai", "zhipu", "vllm", "sglang", "llamacpp", "ollama", "anthropic")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Timeouts(Section):
    connect: float = Field(5.0, gt=0, description="TCP (and TLS) connect")
    first_byte: float = Field(120.0, gt=0, description="request sent → first event (prompt processing)")
    between_chunks: float = Field(60.0, gt=0, description="longest silence once streaming")


class RetryPolicy(Section):
    """Retries of a request whose every deployment failed before anything reached the client."""

    retries: int = Field(2, ge=0, le=10, description="extra rounds over the deployments")
    budget_ratio: float = Field(0.2, ge=0, description="retries allowed per request in the window")
    budget_min: int = Field(5, ge=0, description="retries always allowed per window (low traffic)")
    budget_window_s: float = Field(10.0, gt=0)
    backoff_s: float = Field(0.25, ge=0, description="first backoff; doubles per round, jittered")
    backoff_max_s: float = Field(4.0, ge=0)
    max_wait_s: float = Field(5.0, ge=0, description="longest upstream Retry-After waited out")


class BreakerPolicy(Section):
    """Outlier ejection of a deployment by failure rate, and the panic threshold (see breaker.py)."""

    failures: int = Field(
        5, ge=0, description="failed attempts in the window needed to eject it (with failure_rate); 0: never"
    )
    failure_rate: float = Field(0.5, gt=0, le=1, description="share of the window's attempts that failed")
    min_requests: int = Field(
        20, ge=1, description="attempts in the window before a rate is judged (unless all of them failed)"
    )
    window_s: float = Field(10.0, ge=1, le=600, description="the sliding window of attempts judged")
    cooldown_s: float = Field(10.0, gt=0, description="ejection time; doubles per ejection in a row")
    max_cooldown_s: float = Field(120.0, gt=0, description="longest ejection")
    probes: int = Field(3, ge=1, le=100, description="half-open: requests let through at once")
    probe_interval_s: float = Field(
        0.5, ge=0, description="an ejected upstream is health-checked this often (0: wait out the ejection)"
    )
    panic_threshold: float = Field(
        0.5, ge=0, le=1, description="below this share in rotation, balance over all but dead deployments"
    )


class Deployment(Section):
    """One way to serve a public model name."""

    kind: Kind = "embedded"
    base_url: str | None = Field(None, description="upstream API root, e.g. http://gpu1:8000/v1")
    api_key_env: str | None = Field(None, description="name of the environment variable with the key")
    model: str | None = Field(None, description="the upstream's own model name (default: the public one)")
    gguf: Path | None = Field(None, description="embedded: a local GGUF (default: a packaged model)")
    packaged: str | None = Field(None, description="embedded: a packaged model (default: the quality one)")
    mmproj: Path | None = Field(None, description="embedded: the GGUF's multimodal projector (vision)")
    vision: bool = Field(False, description="upstream: the model accepts images (sent as data URLs)")
    weight: float = Field(1.0, gt=0, description="share of traffic among deployments of one priority")
    priority: int = Field(0, ge=0, description="0 is tried first; higher numbers are fallbacks")
    timeouts: Timeouts = Field(default_factory=Timeouts)
    max_concurrency: int | None = Field(None, ge=1, description="requests in flight at most")
    connection_retries: int = Field(
        2, ge=0, le=5, description="refused/reset/stale connections retried at once before any response byte"
    )
    auth: Literal["key", "jwt", "bearer"] = Field(
        "key",
        description="zhipu: the key, or a JWT signed with it (jwt); anthropic: as x-api-key, or bearer",
    )
    health_path: str = Field("models", description="GET path (relative to base_url) for active checks")
    health_interval_s: float = Field(15.0, ge=0, description="active health checks; 0 disables them")

    @model_validator(mode="after")
    def _check(self) -> Deployment:
        if self.kind == "embedded":
            if self.base_url or self.api_key_env or self.model:
                raise ValueError("an embedded deployment takes `gguf`, not base_url/api_key_env/model")
            if self.gguf is not None and self.packaged is not None:
                raise ValueError("an embedded deployment takes `gguf` or `packaged`, not both")
            if self.packaged is not None:
                check_packaged(self.packaged)
            check_projector(self.gguf, self.mmproj, self.vision)
            return self
        if self.gguf is not None or self.mmproj is not None or self.packaged is not None:
            raise ValueError(
                f"a {self.kind} deployment is an upstream: it takes base_url, not gguf/packaged/mmproj"
            )
        if not self.base_url:
            raise ValueError(f"a {self.kind} deployment needs base_url")
        check_base_url(self.base_url)
        if self.api_key_env is not None and not _ENV_NAME.match(self.api_key_env):
            raise ValueError("api_key_env must be the NAME of an environment variable, not a key")
        return self

    @property
    def is_upstream(self) -> bool:
        return self.kind != "embedded"

    @property
    def sees_images(self) -> bool:
        return self.vision or self.mmproj is not None


def check_packaged(name: str) -> None:
    """A packaged model is a chat model (``engines.llamacpp.models``) or an embedding one."""
    if name not in PACKAGED and name not in CATALOG:
        known = ", ".join([*PACKAGED, *CATALOG])
        raise ValueError(f"unknown packaged model {name!r}; known: {known}")


def check_projector(gguf: Path | None, mmproj: Path | None, vision: bool) -> None:
    """The embedded engine sees images only through a GGUF's multimodal projector."""
    if mmproj is not None and gguf is None:
        raise ValueError("`mmproj` needs the `gguf` it belongs to (the packaged model cannot see)")
    if vision and mmproj is None:
        raise ValueError("an embedded deployment accepts images only with `mmproj` (its projector GGUF)")


def check_base_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an http(s) URL with a host, got {url!r}")
    if parts.username or parts.password:
        raise ValueError("base_url must not carry credentials; use api_key_env")
    if parts.query or parts.fragment:
        raise ValueError("base_url must not have a query or fragment")
