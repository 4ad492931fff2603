"""The in-process limiter: exact for one replica; every step runs on the event loop, so atomic."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from glmserve.accounting.limiters.base import WINDOW_S, Decision, Lease, Quota, Reason, WindowState
from glmserve.accounting.limiters.window import Window
from glmserve.ids import hex_id


@dataclass(slots=True)
class _KeyState:
    requests: Window
    tokens: Window
    leases: dict[str, float] = field(default_factory=dict)  # lease id -> expiry

    def prune(self, now: float) -> None:
        self.requests.prune(now)
        self.tokens.prune(now)
        for lease_id in [i for i, until in self.leases.items() if until <= now]:
            del self.leases[lease_id]


class MemoryLimiter:
    def __init__(
        self, lease_s: float, *, window_s: int = WINDOW_S, clock: Callable[[], float] = time.time
    ) -> None:
        self.lease_s = lease_s
        self.window_s = window_s
        self._clock = clock
        self._keys: dict[str, _KeyState] = {}

    def _state(self, key: str) -> _KeyState:
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState(Window(self.window_s), Window(self.window_s))
        return state

    async def acquire(self, key: str, quota: Quota, tokens: int) -> Decision:
        now = self._clock()
        state = self._state(key)
        state.prune(now)
        refused, wait = _refusal(state, quota, now)
        if refused is not None:
            requests = _window_state(state.requests, quota.rpm, now)
            return Decision(None, refused, wait, requests, _window_state(state.tokens, quota.tpm, now))
        second = math.floor(now)
        lease = Lease(key, hex_id(8), second, tokens, quota.rpm is not None, quota.tpm is not None)
        if lease.counted_request:
            state.requests.add(second, 1)
        if lease.counted_tokens:
            state.tokens.add(second, tokens)
        if quota.concurrency is not None:
            state.leases[lease.lease_id] = now + self.lease_s
        requests = _window_state(state.requests, quota.rpm, now)
        return Decision(lease, None, 0.0, requests, _window_state(state.tokens, quota.tpm, now))

    async def release(self, lease: Lease, used_tokens: int | None, *, undo: bool = False) -> None:
        state = self._keys.get(lease.key)
        if state is None:
            return
        state.leases.pop(lease.lease_id, None)
        if lease.counted_tokens:
            used = 0 if undo else lease.tokens if used_tokens is None else used_tokens
            state.tokens.adjust(lease.second, used - lease.tokens)
        if undo and lease.counted_request:
            state.requests.adjust(lease.second, -1)

    async def close(self) -> None:
        self._keys.clear()


def _refusal(state: _KeyState, quota: Quota, now: float) -> tuple[Reason | None, float]:
    if quota.concurrency is not None and len(state.leases) >= quota.concurrency:
        return "concurrency", 1.0
    if quota.rpm is not None and state.requests.total() >= quota.rpm:
        return "requests", state.requests.wait_below(quota.rpm, now)
    if quota.tpm is not None and state.tokens.total() >= quota.tpm:
        return "tokens", state.tokens.wait_below(quota.tpm, now)
    return None, 0.0


def _window_state(window: Window, limit: int | None, now: float) -> WindowState | None:
    return None if limit is None else WindowState(limit, window.total(), window.reset_s(now))
