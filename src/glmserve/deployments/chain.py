"""All deployments of one public model, as one Engine: balancing, fallback, retries, breakers.

An attempt goes to the deployment ``balancer.select`` picks. Until its first event nothing has
reached the client, so a failure there is handled inside:

- the request's own fault (invalid parameter, prompt too long, content filtered) is raised to
  the client as it is: another deployment would refuse it too;
- any other failure counts against the deployment (its breaker; a Retry-After cools it down)
  and the next untried deployment gets the request at once: a fallback, free of charge;
- when too many deployments are ejected the balancer panics (``balancer.select``) and the
  request goes to an ejected deployment that still answers some requests, instead of a 503;
- once every deployment has failed this round, another round may start after a jittered
  backoff (or the upstream's Retry-After, if it is at most ``max_wait_s``), up to ``retries``
  rounds, each taken from the model's retry budget.

Embeddings, reranking and legacy completions take the same path (``embed``, ``rerank``,
``complete``): each is an event stream from the member's engine capability.

After the first event the answer is committed: a failure then ends the stream with
``Finish("network_error")`` and the error raised, which the client sees in-band. Closing the
stream early (the client left) closes the deployment's stream and counts as nothing.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

from glmserve.config.deployments import RetryPolicy
from glmserve.deployments.balancer import select
from glmserve.deployments.budget import RetryBudget, backoff
from glmserve.deployments.member import Member
from glmserve.engines.base import CompletionJob, EmbeddingJob, Event, Finish, Generation, RerankJob, Usage
from glmserve.engines.counting import (
    count_prompt_tokens,
    count_text_tokens,
    estimate_prompt_tokens,
    estimate_text_tokens,
)
from glmserve.errors import (
    GlmError,
    InvalidRequest,
    RateLimited,
    Unavailable,
    UpstreamError,
)

DEFAULT_COOLDOWN_S = 1.0
# A wait that outlasts a cooldown sleeps this much longer: uvloop's timers run on a cached
# millisecond clock, so a sleep can end a millisecond before time.monotonic() reaches its end,
# and a sub-millisecond one returns at once; the deployment would then still be cooling.
TIMER_SLACK_S = 0.01
Call = Callable[[Any], AsyncIterator[Event]]  # one capability of a member's engine, bound to a request


def _counts_against(exc: GlmError) -> bool:
    """A failure of the deployment, not of the request (which any deployment would refuse)."""
    return not isinstance(exc, InvalidRequest)


def _signed(event: Event, member: Member) -> Event:
    """A ``Usage`` names the deployment that answered, for the request's usage row."""
    return replace(event, served_by=member.label) if isinstance(event, Usage) else event


class DeploymentChain:
    def __init__(
        self,
        name: str,
        members: list[Member],
        policy: RetryPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        panic_threshold: float = 0.5,
    ):
        self.name = name
        self.panic_threshold = panic_threshold
        self.members = members
        self.policy = policy
        self.budget = RetryBudget(policy.budget_ratio, policy.budget_min, policy.budget_window_s, clock)
        self._tiers = [[m for m in members if m.priority == p] for p in sorted({m.priority for m in members})]
        self._clock, self._sleep, self._rand = clock, sleep, rand

    def stream(self, generation: Generation) -> AsyncIterator[Event]:
        return self._serve(lambda engine: engine.stream(generation))

    def embed(self, job: EmbeddingJob) -> AsyncIterator[Event]:
        return self._serve(lambda engine: engine.embed(job))

    def rerank(self, job: RerankJob) -> AsyncIterator[Event]:
        return self._serve(lambda engine: engine.rerank(job))

    def complete(self, job: CompletionJob) -> AsyncIterator[Event]:
        return self._serve(lambda engine: engine.complete(job))

    async def _serve(self, call: Call) -> AsyncIterator[Event]:
        self.budget.record_request()
        member, events, first = await self._first_event(call)
        try:
            yield _signed(first, member)
            async for event in events:
                yield _signed(event, member)
        except GlmError as exc:
            self._failed(member, exc)
            yield Finish("network_error")
            raise
        finally:
            member.in_flight -= 1
            await events.aclose()  # type: ignore[attr-defined]

    async def _first_event(self, call: Call) -> tuple[Member, AsyncIterator[Event], Event]:
        tried: set[Member] = set()
        dead: set[Member] = set()  # permanent failures: not worth another round
        last: GlmError | None = None
        rounds = waited = 0
        while True:
            member, panic = select(self._tiers, self._clock(), tried | dead, self.panic_threshold)
            if member is None:
                if not tried and waited == 0 and (pause := self._short_cooldown()) is not None:
                    waited += 1
                    await self._sleep(pause + TIMER_SLACK_S)
                    continue
                if not tried:
                    raise last or self._unavailable()
                pause = self._next_round(rounds, last, dead)
                if pause is None:
                    raise last or self._unavailable()
                await self._sleep(pause)
                rounds, tried = rounds + 1, set()
                continue
            tried.add(member)
            try:
                return await self._attempt(member, call, panic)
            except GlmError as exc:
                if not _counts_against(exc):
                    raise
                last = exc
                if isinstance(exc, UpstreamError) and exc.permanent:
                    dead.add(member)

    async def _attempt(
        self, member: Member, call: Call, panic: bool = False
    ) -> tuple[Member, AsyncIterator[Event], Event]:
        permit = member.start(self._clock(), panic=panic)
        events = call(member.engine)
        try:
            first = await anext(events)
        except StopAsyncIteration:
            member.in_flight -= 1
            exc = UpstreamError(f"deployment {member.label} ended its answer without any output")
            self._failed(member, exc, permit)
            raise exc from None
        except GlmError as exc:
            member.in_flight -= 1
            await events.aclose()  # type: ignore[attr-defined]
            if _counts_against(exc):
                self._failed(member, exc, permit)
            else:
                member.breaker.release(permit)
            raise
        except BaseException:
            member.in_flight -= 1
            member.breaker.release(permit)
            raise
        member.breaker.success(self._clock(), permit)
        return member, events, first

    def _failed(self, member: Member, exc: GlmError, permit: bool = False) -> None:
        now = self._clock()
        member.counts["failures"] += 1
        if isinstance(exc, RateLimited):  # overloaded, not broken: it answered, so the breaker closes
            member.breaker.success(now, permit)
            member.cool_down(now + (exc.retry_after or DEFAULT_COOLDOWN_S))
            return
        if exc.retry_after:
            member.cool_down(now + exc.retry_after)
        member.breaker.failure(now, permit, unreachable=getattr(exc, "unreachable", False))

    def _next_round(self, rounds: int, last: GlmError | None, dead: set[Member]) -> float | None:
        """Seconds to wait before another round, or None when there is none to be had."""
        if last is None or rounds >= self.policy.retries or len(dead) == len(self.members):
            return None
        pause = backoff(rounds, self.policy.backoff_s, self.policy.backoff_max_s, self._rand())
        if last.retry_after is not None:
            if last.retry_after > self.policy.max_wait_s:
                return None
            # The upstream said when to come back: waiting that out is self-limiting, so it does not
            # draw on the retry budget (which an earlier outage may have spent).
            return max(pause, float(last.retry_after) + TIMER_SLACK_S)
        if not self.budget.try_spend():
            return None
        return pause

    def _cooling(self, now: float) -> list[float]:
        """Seconds until each deployment that is only waiting out a Retry-After may be used."""
        return [
            m.cooldown_until - now
            for m in self.members
            if m.cooldown_until > now and m.breaker.available(now) and not m.saturated()
        ]

    def _short_cooldown(self) -> float | None:
        """Every usable deployment is waiting out a Retry-After that ends soon: wait with it."""
        cooling = self._cooling(self._clock())
        return min(cooling) if cooling and min(cooling) <= self.policy.max_wait_s else None

    def _unavailable(self) -> GlmError:
        now = self._clock()
        if all(m.saturated() for m in self.members):
            busy = f"every deployment of model '{self.name}' is at its concurrency limit"
            return RateLimited(busy, retry_after=1)
        if cooling := self._cooling(now):
            after = max(1, math.ceil(min(cooling)))
            return RateLimited(f"the deployments of model '{self.name}' are rate limited", retry_after=after)
        opens = [m.breaker.retry_after(now) for m in self.members if not m.breaker.available(now)]
        after = max(1, math.ceil(min(opens))) if opens else 1
        return Unavailable(f"no deployment of model '{self.name}' is available right now", retry_after=after)

    async def count_prompt_tokens(self, generation: Generation) -> int:
        """The first deployment (by priority) that can count; the estimate if none can."""
        count = await self._count(lambda engine: count_prompt_tokens(engine, generation))
        return estimate_prompt_tokens(generation) if count is None else count

    async def count_text_tokens(self, text: str) -> int:
        """``text`` in the first available deployment's vocabulary (or its estimate)."""
        count = await self._count(lambda engine: count_text_tokens(engine, text))
        return estimate_text_tokens(text) if count is None else count

    async def _count(self, count: Callable[[Any], Awaitable[int]]) -> int | None:
        now = self._clock()
        for tier in self._tiers:
            for member in tier:
                if not member.breaker.available(now):
                    continue
                try:
                    return await count(member.engine)
                except GlmError as exc:
                    if not _counts_against(exc):
                        raise
        return None

    def status(self) -> list[dict[str, Any]]:
        now = self._clock()
        return [{"model": self.name, **m.status(now)} for m in self.members]

    @property
    def in_flight(self) -> int:
        return sum(m.in_flight for m in self.members)

    async def close(self) -> None:
        """The members' engines are shared and closed by the router."""
