"""Model names to routes: the table, aliases, and Claude tier names."""

from __future__ import annotations

import pytest

from glmserve.config.settings import Settings
from glmserve.errors import ModelNotFound
from glmserve.serving.model_router import ModelRouter, Route

TIERS = Settings().claude_tiers


def router(tiers: dict[str, str] | None = TIERS) -> ModelRouter:
    routes = {name: Route(name, None, 4096) for name in ("glm-4.6", "glm-4.5-flash")}  # type: ignore[arg-type]
    return ModelRouter(routes, {"claude-sonnet-4-6": "glm-4.5-flash"}, created=0, claude_tiers=tiers)


@pytest.mark.parametrize(
    ("name", "served_by"),
    [
        ("claude-sonnet-4-5-20250929", "glm-4.6"),  # Claude Code's default names, dated or not
        ("claude-opus-4-1", "glm-4.6"),
        ("claude-mythos-5", "glm-4.6"),  # a tier named later: the main model
        ("claude-3-5-haiku-20241022", "glm-4.5-flash"),
        ("claude-haiku-4-5", "glm-4.5-flash"),
        ("claude-sonnet-4-6", "glm-4.5-flash"),  # an explicit alias wins over the tier
    ],
)
def test_claude_names_reach_their_tier(name: str, served_by: str) -> None:
    assert router().resolve(name).public_name == served_by


@pytest.mark.parametrize("name", ["sonnet-4", "my-claude-haiku", "glm-claude"])
def test_other_names_are_not_guessed(name: str) -> None:
    with pytest.raises(ModelNotFound):
        router().resolve(name)


def test_tiers_off_or_pointing_nowhere_resolve_nothing() -> None:
    with pytest.raises(ModelNotFound):
        router({}).resolve("claude-opus-4-1")
    with pytest.raises(ModelNotFound):
        router({"opus": "glm-9", "claude": "glm-9"}).resolve("claude-opus-4-1")
    assert "claude-opus-4-1" not in router().names  # not listed: a rule, not a name
