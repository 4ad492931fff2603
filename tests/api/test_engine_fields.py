"""llama.cpp reads every sampler knob glmserve sends, under the names glmserve sends them.

The generation defaults (``engines/generation_defaults.py``) reach xllamacpp as request-body
fields; an unknown field would be ignored without a word, so a default could silently do
nothing. Each knob is checked by its effect on the real 0.5B, loaded in this process through
glmserve's own engine: a strong setting changes the greedy answer, and the same setting switched
off by its companion knob (a look-back of 0 tokens) gives the greedy answer back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace

import pytest

from glmserve.config.settings import EngineSettings
from glmserve.engines.base import Generation, Sampling, Text
from glmserve.engines.llamacpp.engine import LlamaCppEngine
from glmserve.errors import EngineError

from .server_process import GlmServe

PROMPT = [{"role": "user", "content": "Repeat the word 'cat' twenty times, separated by spaces."}]
GREEDY = Sampling(temperature=0.0, top_p=1.0, max_tokens=24)
HOT = replace(GREEDY, temperature=1.5, seed=3)


@pytest.fixture(scope="module")
def engine(server: GlmServe) -> Iterator[LlamaCppEngine]:
    cfg = EngineSettings(parallel=1, ctx_per_slot=1024, threads=1, batch_threads=1)
    loaded = LlamaCppEngine("fields", server.model_path, cfg)
    yield loaded
    asyncio.run(loaded.close())


def answer(engine: LlamaCppEngine, sampling: Sampling) -> str:
    async def run() -> str:
        parts = [ev.delta async for ev in engine.stream(Generation(PROMPT, sampling)) if isinstance(ev, Text)]
        return "".join(parts)

    return asyncio.run(run())


def test_repeat_penalty_and_its_window(engine: LlamaCppEngine) -> None:
    greedy = answer(engine, GREEDY)
    assert answer(engine, replace(GREEDY, repeat_penalty=3.0)) != greedy
    assert answer(engine, replace(GREEDY, repeat_penalty=3.0, repeat_last_n=0)) == greedy


def test_dry_and_its_window(engine: LlamaCppEngine) -> None:
    greedy = answer(engine, GREEDY)
    dry = replace(GREEDY, dry_multiplier=5.0, dry_base=1.75, dry_allowed_length=1)
    assert answer(engine, dry) != greedy
    assert answer(engine, replace(dry, dry_penalty_last_n=0)) == greedy


def test_top_k_and_min_p_narrow_a_hot_sampler_to_greedy(engine: LlamaCppEngine) -> None:
    greedy = answer(engine, GREEDY)
    assert answer(engine, HOT) != greedy, "precondition: temperature 1.5 strays from greedy"
    assert answer(engine, replace(HOT, top_k=1)) == greedy
    assert answer(engine, replace(HOT, min_p=1.0)) == greedy


def test_prefilling_counts_a_generation_until_its_first_chunk(engine: LlamaCppEngine) -> None:
    """What the batch worker reads (``jobs.service.spare_capacity``): a line waits while it is 1."""

    async def run() -> tuple[list[tuple[int, int]], tuple[int, int], tuple[int, int]]:
        events = engine.stream(Generation(PROMPT, GREEDY)).__aiter__()
        first = asyncio.ensure_future(events.__anext__())
        before = []
        while not first.done():
            before.append((engine.in_flight, engine.prefilling))
            await asyncio.sleep(0.001)
        await first
        at_first = (engine.in_flight, engine.prefilling)
        async for _ in events:
            pass
        return before, at_first, (engine.in_flight, engine.prefilling)

    before, at_first, after = asyncio.run(run())
    assert (1, 1) in before, f"never seen prefilling while the prompt was processed: {set(before)}"
    assert at_first == (1, 0) and after == (0, 0)


def test_ending_within_counts_the_tokens_left_before_max_tokens(engine: LlamaCppEngine) -> None:
    """``spare_capacity`` holds batch lines back while a generation is this close to its end."""

    async def run() -> tuple[list[bool], list[bool], bool]:
        far, near = [], []
        produced = 0
        events = engine.stream(Generation(PROMPT, GREEDY)).__aiter__()  # max_tokens 24
        async for ev in events:
            if isinstance(ev, Text):
                produced += 1
                # 24 tokens in all: with 20 or more left it is not ending within 4 tokens, and
                # with fewer than 8 left it is within 8 until it ends (chunks read here lag the
                # worker, which may have finished by the last few)
                if produced <= 2:
                    far.append(engine.ending_within(4))
                if produced >= 18:
                    near.append(engine.ending_within(8))
        return far, near, engine.ending_within(10**6)

    far, near, after = asyncio.run(run())
    assert far and not any(far), f"ending early in the answer: {far}"
    assert near[0], f"not ending near max_tokens: {near}"
    assert after is False, "a finished generation still counted"


def test_a_generation_asked_of_a_closed_engine_is_refused_and_gives_its_slot_back(server: GlmServe) -> None:
    cfg = EngineSettings(parallel=1, ctx_per_slot=512, threads=1, batch_threads=1)
    closed = LlamaCppEngine("closed", server.model_path, cfg)

    async def run() -> bool:
        await closed.close()
        with pytest.raises(EngineError, match="closed"):
            async for _ in closed.stream(Generation(PROMPT, GREEDY)):
                pass
        return closed._free.locked()

    assert asyncio.run(run()) is False, "the refused generation kept its slot"
