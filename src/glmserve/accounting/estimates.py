"""The tokens of a request whose engine reported none: counted from its input and its output.

A stream cut before its ``Usage`` by an engine that sends no ``Progress`` (an upstream without
continuous usage: the client left, the upstream broke off, or it never sends usage) is charged
what it took and gave: its prompt counted as ``count_tokens`` counts it (``engines.counting``:
the embedded model's template and tokenizer, an ``anthropic`` upstream's endpoint, else the
byte estimate) and the text it streamed in the route's vocabulary. A count that needs an
answer gets ``COUNT_S``; if it fails or takes longer, both are the byte estimates, so a row
never waits long or goes without a figure.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from glmserve.engines.base import CompletionJob, EmbeddingJob, Usage
from glmserve.engines.counting import (
    count_prompt_tokens,
    count_text_tokens,
    estimate_prompt_tokens,
    estimate_text_tokens,
)
from glmserve.errors import GlmError
from glmserve.serving.plan import AnyPlan, Plan, Task

log = logging.getLogger("glmserve.accounting.estimates")
COUNT_S = 2.0
Inputs = list[str] | list[list[int]]


async def estimate_usage(plan: AnyPlan, said: str) -> Usage:
    """``plan``'s prompt tokens and the tokens of ``said``, the text its engine produced."""
    engine = plan.route.engine
    try:
        async with asyncio.timeout(COUNT_S):
            return Usage(await _prompt(engine, plan), await count_text_tokens(engine, said))
    except (GlmError, TimeoutError) as exc:
        log.info("request %s counted by bytes: %s", plan.request_id, getattr(exc, "message", "timed out"))
        return Usage(_rough_prompt(plan), estimate_text_tokens(said))


async def _prompt(engine: Any, plan: AnyPlan) -> int:
    if isinstance(plan, Plan):
        return await count_prompt_tokens(engine, plan.generation)
    total = 0
    for item in _inputs(plan.task):
        total += len(item) if isinstance(item, list) else await count_text_tokens(engine, item)
    return total


def _rough_prompt(plan: AnyPlan) -> int:
    if isinstance(plan, Plan):
        return estimate_prompt_tokens(plan.generation)
    return sum(len(i) if isinstance(i, list) else estimate_text_tokens(i) for i in _inputs(plan.task))


def _inputs(task: Task) -> Inputs:
    if isinstance(task, EmbeddingJob):
        return task.inputs
    if isinstance(task, CompletionJob):
        return task.prompts
    return [task.query, *task.documents]
