"""Figures from raw request timings: throughput, latency percentiles, prompt-cache effect.

Latency figures come from the successful requests; the failed ones are counted beside them (and
fail every verdict that uses the level, see ``verdicts``). A p95 is computed only when every pass
sent at least ``targets.MIN_REQUESTS_PER_PASS`` requests; otherwise it is ``None`` (shown "-").
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import targets
from load import LevelRun, RequestResult


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in 0..100); ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: list[float]) -> float | None:
    return percentile(values, 50)


def decode_rate(result: RequestResult) -> float | None:
    """Tokens/s after the first token: (tokens - 1) over first-to-last content delta."""
    if len(result.token_times) < 2 or result.tokens < 2:
        return None
    span = result.token_times[-1] - result.token_times[0]
    return (result.tokens - 1) / span if span > 0 else None


def token_source(results: list[RequestResult]) -> str:
    with_usage = sum(r.completion_tokens is not None for r in results)
    if with_usage == len(results):
        return "usage"
    return "deltas" if with_usage == 0 else "mixed"


def summarize_level(run: LevelRun, fewest_per_pass: int | None = None) -> dict[str, Any]:
    """``run``: one pass, or all passes pooled with ``fewest_per_pass`` the smallest pass."""
    ok = [r for r in run.results if r.ok]
    fewest = len(run.results) if fewest_per_pass is None else fewest_per_pass
    p95 = 95 if fewest >= targets.MIN_REQUESTS_PER_PASS else None
    tokens = sum(r.tokens for r in ok)
    ttfts = [t for r in ok if (t := r.ttft) is not None]
    gaps = [b - a for r in ok for a, b in zip(r.token_times, r.token_times[1:], strict=False)]
    rates = [x for r in ok if (x := decode_rate(r)) is not None]
    return {
        "concurrency": run.level,
        "requests": len(run.results),
        "failed": len(run.results) - len(ok),
        "errors": sorted({r.error for r in run.results if r.error}),
        "completion_tokens": tokens,
        "token_source": token_source(ok),
        "finish_reasons": dict(Counter(r.finish_reason or "none" for r in run.results)),
        "wall_s": run.wall_s,
        "aggregate_tok_s": tokens / run.wall_s if run.wall_s > 0 else None,
        "ttft_p50_s": percentile(ttfts, 50),
        "ttft_p95_s": percentile(ttfts, p95) if p95 else None,
        "itl_p50_s": percentile(gaps, 50),
        "itl_p95_s": percentile(gaps, p95) if p95 else None,
        "decode_tok_s_p50": median(rates),
        "x_cache": dict(Counter(r.x_cache or "absent" for r in run.results)),
        "per_request": [r.record() for r in run.results],
    }


def pass_figures(run: LevelRun) -> dict[str, Any]:
    """One pass's headline figures, kept beside the merged ones to show the spread between passes."""
    figures = summarize_level(run)
    keep = (
        "wall_s",
        "aggregate_tok_s",
        "ttft_p50_s",
        "ttft_p95_s",
        "itl_p95_s",
        "decode_tok_s_p50",
        "requests",
        "failed",
    )
    return {k: figures[k] for k in keep}


def summarize_conversation(results: list[RequestResult]) -> dict[str, Any]:
    turns = [
        {
            "turn": i,
            "ok": r.ok,
            "error": r.error,
            "ttft_s": r.ttft,
            "prompt_tokens": r.prompt_tokens,
            "cached_tokens": r.cached_tokens,
            "completion_tokens": r.tokens,
        }
        for i, r in enumerate(results, start=1)
    ]
    first = results[0].ttft if results else None
    later = [t for r in results[1:] if r.ok and (t := r.ttft) is not None]
    later_mean = sum(later) / len(later) if later else None
    return {
        "turns": turns,
        "ttft_turn1_s": first,
        "ttft_later_mean_s": later_mean,
        "ttft_speedup": first / later_mean if first and later_mean else None,
        "cached_tokens_reported": any(r.cached_tokens is not None for r in results),
    }
