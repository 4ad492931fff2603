"""The Redis limiter: one Lua script checks every limit and counts the request atomically.

Replicas sharing a Redis therefore share each key's limits exactly: the script runs alone on
the server, reads the clock there (``TIME``, so replicas' clocks do not matter) and either
refuses without counting or counts the request, its tokens and its lease in one step. A key's
three Redis keys share a hash tag, so they live in one cluster slot.

Per key: ``{prefix}:{id}:req`` and ``:tok`` are hashes of second -> count (the sliding window,
as in ``window.py``); ``:conc`` is a sorted set of lease ids scored by their expiry.

When Redis cannot be reached (1 s connect and socket timeouts), ``fail_open`` decides: admit
the request uncounted (the default, like Envoy's rate-limit filter) or refuse it with 503
``Retry-After: 1``. After a failure Redis is left alone for ``RETRY_AFTER_S`` and every request
meanwhile gets the same verdict at once, so an outage costs no request a timeout; the next
request after that tries Redis again, and limits are exact again as soon as it answers.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from glmserve.accounting.limiters.base import WINDOW_S, Decision, Lease, Quota, Reason, WindowState
from glmserve.errors import Unavailable
from glmserve.ids import hex_id

log = logging.getLogger("glmserve.limits")
TIMEOUT_S = 1.0
RETRY_AFTER_S = 1.0

ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local sec = tonumber(t[1])
local rpm, tpm, conc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens, lease_id, lease_s = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local window = tonumber(ARGV[7])

local function scan(key)
  local flat = redis.call('HGETALL', key)
  local total, buckets, stale = 0, {}, {}
  for i = 1, #flat, 2 do
    local s, v = tonumber(flat[i]), tonumber(flat[i + 1])
    if s <= sec - window then
      stale[#stale + 1] = flat[i]
    else
      total = total + v
      buckets[#buckets + 1] = {s, v}
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  table.sort(buckets, function(a, b) return a[1] < b[1] end)
  return total, buckets
end

local function wait_below(total, buckets, limit)
  local need, freed = total - limit + 1, 0
  for _, b in ipairs(buckets) do
    freed = freed + b[2]
    if freed >= need then return math.max(0, b[1] + window - now) end
  end
  return window
end

local function reset(buckets)
  if #buckets == 0 then return 0 end
  return math.max(0, buckets[1][1] + window - now)
end

local function ms(seconds) return math.ceil(seconds * 1000) end

local req_total, req_b, tok_total, tok_b = 0, {}, 0, {}
if rpm > 0 then req_total, req_b = scan(KEYS[1]) end
if tpm > 0 then tok_total, tok_b = scan(KEYS[2]) end
local in_flight = 0
if conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  in_flight = redis.call('ZCARD', KEYS[3])
end

local refused, wait = '', 0
if conc > 0 and in_flight >= conc then
  refused, wait = 'concurrency', 1
elseif rpm > 0 and req_total >= rpm then
  refused, wait = 'requests', wait_below(req_total, req_b, rpm)
elseif tpm > 0 and tok_total >= tpm then
  refused, wait = 'tokens', wait_below(tok_total, tok_b, tpm)
else
  if rpm > 0 then
    redis.call('HINCRBY', KEYS[1], sec, 1)
    redis.call('EXPIRE', KEYS[1], window + 1)
    req_total = req_total + 1
    if #req_b == 0 then req_b = {{sec, 1}} end
  end
  if tpm > 0 then
    redis.call('HINCRBY', KEYS[2], sec, tokens)
    redis.call('EXPIRE', KEYS[2], window + 1)
    tok_total = tok_total + tokens
    if #tok_b == 0 then tok_b = {{sec, tokens}} end
  end
  if conc > 0 then
    redis.call('ZADD', KEYS[3], now + lease_s, lease_id)
    redis.call('EXPIRE', KEYS[3], math.ceil(lease_s) + 1)
  end
end
return {refused, ms(wait), sec, req_total, ms(reset(req_b)), tok_total, ms(reset(tok_b))}
"""

RELEASE = """
redis.call('ZREM', KEYS[3], ARGV[1])
local function adjust(key, delta)
  if delta ~= 0 and redis.call('HEXISTS', key, ARGV[2]) == 1 then
    redis.call('HINCRBY', key, ARGV[2], delta)
  end
end
adjust(KEYS[2], tonumber(ARGV[3]))
adjust(KEYS[1], tonumber(ARGV[4]))
return 1
"""


class RedisLimiter:
    def __init__(
        self, url: str, prefix: str, lease_s: float, *, window_s: int = WINDOW_S, fail_open: bool = True
    ) -> None:
        self.prefix = prefix
        self.lease_s = lease_s
        self.window_s = window_s
        self.fail_open = fail_open
        self.failures = 0  # admissions decided without Redis
        self._down_until = 0.0
        self._redis: Redis = Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
        self._acquire = self._redis.register_script(ACQUIRE)
        self._release = self._redis.register_script(RELEASE)

    def keys(self, key: str) -> list[str]:
        return [f"{self.prefix}:{{{key}}}:{part}" for part in ("req", "tok", "conc")]

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise Unavailable(f"Redis is unreachable: {type(exc).__name__}") from exc

    async def acquire(self, key: str, quota: Quota, tokens: int) -> Decision:
        lease_id = hex_id(8)
        args = [quota.rpm or 0, quota.tpm or 0, quota.concurrency or 0, tokens, lease_id, self.lease_s]
        try:
            reply = await self._call(self._acquire, self.keys(key), [*args, self.window_s])
        except Unavailable:
            self.failures += 1
            if self.fail_open:
                return Decision(None, unmetered=True)
            raise
        refused, wait_ms, second, req_used, req_reset, tok_used, tok_reset = reply
        requests = _state(quota.rpm, req_used, req_reset)
        token_state = _state(quota.tpm, tok_used, tok_reset)
        reason = _reason(refused)
        if reason is not None:
            return Decision(None, reason, int(wait_ms) / 1000, requests, token_state)
        lease = Lease(key, lease_id, int(second), tokens, quota.rpm is not None, quota.tpm is not None)
        return Decision(lease, None, 0.0, requests, token_state)

    async def release(self, lease: Lease, used_tokens: int | None, *, undo: bool = False) -> None:
        used = 0 if undo else lease.tokens if used_tokens is None else used_tokens
        token_delta = used - lease.tokens if lease.counted_tokens else 0
        request_delta = -1 if undo and lease.counted_request else 0
        args = [lease.lease_id, lease.second, token_delta, request_delta]
        await self._call(self._release, self.keys(lease.key), args)

    async def close(self) -> None:
        await self._redis.aclose()

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        if time.monotonic() < self._down_until:
            raise Unavailable("rate limiter unavailable: Redis is down", retry_after=1)
        try:
            return await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            if time.monotonic() >= self._down_until:
                verdict = "admitting requests uncounted" if self.fail_open else "refusing limited requests"
                log.warning("Redis unreachable (%s): %s", type(exc).__name__, verdict)
            self._down_until = time.monotonic() + RETRY_AFTER_S
            # The pooled connections died with it: the next try after the pause starts afresh.
            await self._redis.connection_pool.disconnect()
            # The message names the failure, never a key's secret (Redis holds only key ids).
            raise Unavailable(f"rate limiter unavailable: {type(exc).__name__}", retry_after=1) from exc


def _reason(raw: bytes | str) -> Reason | None:
    value = raw.decode() if isinstance(raw, bytes) else raw
    if value == "concurrency":
        return "concurrency"
    if value == "requests":
        return "requests"
    if value == "tokens":
        return "tokens"
    return None


def _state(limit: int | None, used: int, reset_ms: int) -> WindowState | None:
    return None if limit is None else WindowState(limit, int(used), int(reset_ms) / 1000)
