"""Per-key limits in the request path, before any engine work: models, RPM/TPM/concurrency, budget.

``Limits.admit`` either raises the client's error or returns a ``Ticket`` that the request
holds until its answer is done (a stream holds it until its last chunk), then hands back with
``release``. The errors (API.md §6, §4.4):

- a model the key may not use: 403 ``1220``;
- too many requests in flight: 429 ``1302``, ``Retry-After: 1``;
- requests or tokens per minute: 429 ``1303``, ``Retry-After`` until the window frees (≤ 60 s);
- budget used up: 429 ``1308`` (monthly) or ``1113`` (total), ``x-should-retry: false``.

Every 429 and every admitted answer carries OpenAI's ``x-ratelimit-*`` headers for the limits
the key has. A request's tokens are counted at its worst case (``worst_case_tokens``) when
admitted and corrected to the real use when released.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import orjson

from glmserve.accounting.auth import Principal
from glmserve.accounting.budget_allowances import BudgetAllowances
from glmserve.accounting.limiters.base import Decision, Lease, Limiter, Quota, WindowState
from glmserve.config.accounting import LimitSettings
from glmserve.engines.base import Generation
from glmserve.errors import (
    BudgetExhausted,
    GlmError,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    TooManyRequests,
)
from glmserve.store.budget import BudgetHold, Refusal, next_period_start
from glmserve.store.key_records import KeyPolicy

# A chat template wraps each message in a few special tokens and may add a default system
# prompt; a token is at least one byte of the JSON the message came as.
PER_MESSAGE_TOKENS = 32
TEMPLATE_TOKENS = 256
MAX_RETRY_AFTER_S = 60


def worst_case_tokens(generation: Generation, context_window: int) -> int:
    """An upper bound of prompt + completion tokens, capped at the model's context window."""
    sent = {"messages": generation.messages, "tools": generation.tools}
    prompt = len(orjson.dumps(sent)) + PER_MESSAGE_TOKENS * len(generation.messages) + TEMPLATE_TOKENS
    completion = generation.sampling.max_tokens or context_window
    return min(context_window, prompt + completion)


@dataclass(slots=True)
class Ticket:
    """What an admitted request holds: its limiter lease and its budget hold."""

    lease: Lease | None = None
    hold: BudgetHold | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Limits:
    def __init__(self, limiter: Limiter, budgets: BudgetAllowances, defaults: LimitSettings) -> None:
        self.limiter = limiter
        self._budgets = budgets
        self._defaults = defaults

    def quota(self, principal: Principal) -> Quota:
        """The key's own limits; a user key without one gets the configured default."""
        policy, defaults = principal.policy, self._defaults
        if principal.is_admin:
            return Quota(policy.rpm, policy.tpm, policy.concurrency)
        return Quota(
            policy.rpm or defaults.rpm,
            policy.tpm or defaults.tpm,
            policy.concurrency or defaults.concurrency,
        )

    async def admit(self, principal: Principal, model: str, tokens: int) -> Ticket:
        if not principal.policy.allows(model):
            raise PermissionDenied(f"this API key may not use model '{model}'", param="model")
        ticket = Ticket()
        quota = self.quota(principal)
        if not quota.unlimited:
            decision = await self.limiter.acquire(principal.key_id, quota, tokens)
            ticket.headers = ratelimit_headers(decision)
            if decision.lease is None and not decision.unmetered:
                raise _refused(decision, quota, ticket.headers)
            ticket.lease = decision.lease
        if principal.policy.budget_tokens is not None:
            try:
                ticket.hold = await self._reserve(principal.key_id, principal.policy, tokens)
            except BaseException:
                await self._undo(ticket)
                raise
        return ticket

    async def release(self, ticket: Ticket, used_tokens: int | None) -> None:
        """The request is over; ``used_tokens`` corrects its worst case (None: keep it)."""
        if ticket.lease is not None:
            lease, ticket.lease = ticket.lease, None
            await self.limiter.release(lease, used_tokens)

    async def _reserve(self, key_id: str, policy: KeyPolicy, tokens: int) -> BudgetHold:
        assert policy.budget_tokens is not None
        outcome = await self._budgets.reserve(key_id, policy.budget_tokens, policy.budget_period, tokens)
        if isinstance(outcome, Refusal):
            raise _exhausted(outcome, policy)
        return outcome

    async def _undo(self, ticket: Ticket) -> None:
        if ticket.lease is not None:
            lease, ticket.lease = ticket.lease, None
            await self.limiter.release(lease, None, undo=True)


def _refused(decision: Decision, quota: Quota, headers: dict[str, str]) -> GlmError:
    retry = min(MAX_RETRY_AFTER_S, max(1, math.ceil(decision.retry_after_s)))
    exc: GlmError
    if decision.refused == "concurrency":
        exc = RateLimited(
            f"too many requests in flight for this API key (limit {quota.concurrency})", retry_after=retry
        )
    elif decision.refused == "tokens":
        exc = TooManyRequests(f"rate limit reached: {quota.tpm} tokens per minute", retry_after=retry)
    else:
        exc = TooManyRequests(f"rate limit reached: {quota.rpm} requests per minute", retry_after=retry)
    exc.extra_headers = headers
    return exc


def _exhausted(refusal: Refusal, policy: KeyPolicy) -> GlmError:
    if policy.budget_period == "total":
        return BudgetExhausted(f"the token budget of this API key ({refusal.budget} tokens) is used up")
    resets = next_period_start(time.time()).strftime("%Y-%m-%dT%H:%M:%SZ")
    return QuotaExceeded(
        f"the monthly token budget of this API key ({refusal.budget} tokens) is used up until {resets}"
    )


def ratelimit_headers(decision: Decision) -> dict[str, str]:
    headers: dict[str, str] = {}
    for kind, state in (("requests", decision.requests), ("tokens", decision.tokens)):
        if state is not None:
            headers.update(_window_headers(kind, state))
    return headers


def _window_headers(kind: str, state: WindowState) -> dict[str, str]:
    return {
        f"x-ratelimit-limit-{kind}": str(state.limit),
        f"x-ratelimit-remaining-{kind}": str(state.remaining),
        f"x-ratelimit-reset-{kind}": duration(state.reset_s),
    }


def duration(seconds: float) -> str:
    """OpenAI's reset format: ``20ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest}s"
