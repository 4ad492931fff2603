"""Which deployment takes the next attempt: priority tiers, then weighted least-in-flight.

Within the lowest priority tier that has an available deployment (breaker not open, no
Retry-After pending, under ``max_concurrency``, not already tried by this request), the
deployments with the fewest requests in flight per unit of weight compete; ties (always the
case for sequential traffic) go by smooth weighted round-robin, so traffic splits by weight
both when idle and under load. Deployments whose active health check failed are used only
when nothing healthy is left.

Panic (Envoy's panic threshold): when fewer than ``panic_threshold`` of a tier's deployments are
in rotation (the rest ejected by their breakers), ejection is disregarded in that tier and the
request is balanced over every deployment that is not *dead* (see ``breaker``). Outlier
ejection must make failures smaller, never turn a partly failing model into a refused one; a
tier whose every deployment is dead still refuses at once (the chain's fast 503).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

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


def panicking(tier: Sequence[Member], now: float, threshold: float) -> bool:
    """Too few of the tier's deployments are in rotation: disregard ejection in it."""
    in_rotation = sum(1 for m in tier if m.breaker.in_rotation(now))
    return in_rotation < threshold * len(tier)


def _first(groups: Iterable[list[Member]]) -> Member | None:
    """From the first group with a healthy member; else from every unhealthy one."""
    unhealthy: list[Member] = []
    for ready in groups:
        healthy = [m for m in ready if m.healthy is not False]
        if healthy:
            return pick(healthy)
        unhealthy += ready
    return pick(unhealthy)


def select(
    tiers: Sequence[Sequence[Member]],
    now: float,
    exclude: Collection[Member],
    panic_threshold: float = 0.0,
) -> tuple[Member | None, bool]:
    """The member for the next attempt, and whether it was chosen in panic.

    Tiers with enough deployments in rotation come first, in priority order (traffic shifts to
    a fallback tier before any tier panics); then, in panic, every tier again with ejection
    disregarded for the deployments that are not dead.
    """
    calm = [t for t in tiers if panic_threshold <= 0 or not panicking(t, now, panic_threshold)]
    chosen = _first([m for m in t if m not in exclude and m.available(now)] for t in calm)
    if chosen is not None or panic_threshold <= 0:
        return chosen, False
    usable = (
        [m for m in t if m not in exclude and (m.available(now) or m.panic_available(now))] for t in tiers
    )
    chosen = _first(usable)
    # An ejected member can only have been picked in panic.
    return chosen, chosen is not None and not chosen.breaker.in_rotation(now)
