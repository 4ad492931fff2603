"""Which deployment takes the next attempt: priority tiers, then weighted least-in-flight.

Within the lowest priority tier that has an available deployment (breaker not open, no
Retry-After pending, under ``max_concurrency``, not already tried by this request), the
deployments with the fewest requests in flight per unit of weight compete; ties (always the
case for sequential traffic) go by smooth weighted round-robin, so traffic splits by weight
both when idle and under load. Deployments whose active health check failed are used only
when nothing healthy is left.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from glmserve.deployments.member import Member

_EPSILON = 1e-9


def pick(members: Sequence[Member]) -> Member | None:
    if not members:
        return None
    lowest = min(m.in_flight / m.weight for m in members)
    tied = [m for m in members if m.in_flight / m.weight <= lowest + _EPSILON]
    if len(tied) == 1:
        return tied[0]
    best = tied[0]
    for member in tied:
        member.current += member.weight
        if member.current > best.current:
            best = member
    best.current -= sum(m.weight for m in tied)
    return best


def select(tiers: Sequence[Sequence[Member]], now: float, exclude: Collection[Member]) -> Member | None:
    unhealthy: list[Member] = []
    for tier in tiers:
        ready = [m for m in tier if m not in exclude and m.available(now)]
        healthy = [m for m in ready if m.healthy is not False]
        if healthy:
            return pick(healthy)
        unhealthy += ready
    return pick(unhealthy)
