"""jobs/service.py spare_capacity: a batch line starts only when interactive work leaves room."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from glmserve.jobs.service import LEAD_TOKENS, spare_capacity


@dataclass
class Engine:
    slots: int = 4
    in_flight: int = 0
    waiting: int = 0
    prefilling: int = 0
    tokens_left: tuple[int, ...] = ()  # of the generations in flight that have a max_tokens

    def ending_within(self, tokens: int) -> bool:
        return any(left < tokens for left in self.tokens_left)


class Router:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def resolve(self, model: str) -> Any:
        return SimpleNamespace(engine=self.engine)


JOB: Any = SimpleNamespace(model="glm-4.6")


@pytest.mark.parametrize(
    ("engine", "spare"),
    [
        (Engine(), True),
        (Engine(in_flight=1), True),  # an interactive request decoding: a line may share the engine
        (Engine(in_flight=1, prefilling=1), False),  # one still before its first token: wait
        (Engine(in_flight=4), False),  # every slot taken
        (Engine(in_flight=2, waiting=1), False),  # someone queued for a slot
        (Engine(in_flight=1, tokens_left=(LEAD_TOKENS,)), True),  # far enough from its end
        (Engine(in_flight=2, tokens_left=(40, LEAD_TOKENS - 1)), False),  # one about to finish
    ],
)
def test_a_line_waits_for_full_slots_a_queue_and_prompts_before_their_first_token(
    engine: Engine, spare: bool
) -> None:
    assert spare_capacity(Router(engine), JOB) is spare  # type: ignore[arg-type]
