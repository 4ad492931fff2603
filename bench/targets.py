"""Every benchmark target in one place: its figure, statistic, sample size and threshold.

This table is fixed before a run and printed at the start of each one; the README's "How we
measure" section states the same rows. A verdict is computed only from these definitions: a
changed statistic, threshold or sample size is a change to this file, made before a run and
said in the commit, never a choice made after seeing a FAIL.

The statistic of every row is computed on the samples pooled over all passes: a per-request
figure (time to first token, decode rate) is a percentile of every request of every pass, and a
throughput is all tokens over all wall time. The per-pass quotients are printed beside it as the
spread (min / median / max), not used for the verdict. Why pooled: the target speaks of the
requests a user sees, and the pooled figure is that figure on all the data; a median of per-pass
quotients is another statistic (the median of 2-4 noisy ratios) which discards most samples, and
the order of the contenders alternates from pass to pass (A B, then B A), so a slow spell of the
machine weighs on both sides of a quotient alike.

A p95 needs at least ``MIN_REQUESTS_PER_PASS`` requests per pass and contender (with fewer, the
"p95" is the largest or second-largest value); every other statistic here is a p50 or a
throughput. Where a table shows a p95 for fewer requests it shows "-" instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MIN_REQUESTS_PER_PASS = 20  # per pass, contender and concurrency level: enough for a p95
MIN_PASSES = 2  # the order alternates, so two passes put each contender first once
MAX_LOAD_PER_CPU = 0.5  # 1-minute load average per CPU at the start above this: the run is INVALID
# The share of CPU time the hypervisor gave to other guests during the run (``steal`` in
# /proc/stat) above this: the run is INVALID. Added 2026-12-02, after a hot-path run whose
# steal rose from about 1% to 15-33% mid-run and tripled every latency, the direct call's too.
MAX_STEAL_SHARE = 0.05


@dataclass(frozen=True)
class Target:
    """``top`` / ``bottom`` of ``figure`` at concurrency ``level``, against ``threshold``.

    ``figure`` names a key of a level summary (``summary.summarize_level``), computed on the
    pooled samples; ``verdict=False`` marks an extra row: printed with its spread, never judged.
    """

    name: str
    figure: str
    statistic: str
    level: int
    top: str
    bottom: str
    threshold: float
    at_least: bool  # True: value >= threshold passes; False: value <= threshold passes
    verdict: bool = True

    def describe(self) -> str:
        sign = ">=" if self.at_least else "<="
        judged = f"{sign} {self.threshold:.2f}" if self.verdict else "extra row, no verdict"
        return f"{self.name} [{self.statistic}] {judged}"


SERVER = ("glmserve", "llama-server")
THROUGHPUT = "all tokens / all wall time, pooled over passes"
TTFT_P95 = "p95 of every request's TTFT, pooled over passes"
DECODE_P50 = "p50 of every request's decode tok/s, pooled over passes"

ENGINE_TARGETS: tuple[Target, ...] = (
    Target(
        "single-stream decode tok/s (c=1): glmserve / xllamacpp in-process",
        "decode_tok_s_p50", DECODE_P50, 1, "glmserve", "xllamacpp-direct", 0.95, True,
    ),
    *(
        Target(f"aggregate tok/s at c={c}: glmserve / llama.cpp server", "aggregate_tok_s",
               THROUGHPUT, c, *SERVER, 0.95, True)
        for c in (1, 4, 8)
    ),
    *(
        Target(f"TTFT p95 at c={c}: glmserve / llama.cpp server", "ttft_p95_s",
               TTFT_P95, c, *SERVER, 1.10, False)
        for c in (1, 4, 8)
    ),
    Target(
        "aggregate tok/s at c=4: glmserve / llama.cpp server at `llama-server -m MODEL` defaults",
        "aggregate_tok_s", THROUGHPUT, 4, "glmserve", "llama-server-default", 1.2, True,
    ),
    Target(
        "aggregate tok/s at c=4: glmserve / llama.cpp server on xllamacpp's bare CommonParams() (1 slot)",
        "aggregate_tok_s", THROUGHPUT, 4, "glmserve", "llama-server-1slot", 1.2, True, verdict=False,
    ),
)  # fmt: skip


@dataclass(frozen=True)
class GatewayTarget:
    """A gateway ratio glmserve / LiteLLM for one mode (``non_stream`` or ``stream``)."""

    name: str
    figure: str  # "added_p50_ms" or "max_rps_zero_errors"
    statistic: str
    mode: str
    threshold: float
    at_least: bool

    def describe(self) -> str:
        sign = ">=" if self.at_least else "<="
        return f"{self.name} [{self.statistic}] {sign} {self.threshold:.3f}"


ADDED_P50 = "p50 of every request's latency pooled over passes, minus the direct call's"
MAX_RPS = "highest concurrency level's req/s with zero errors in every pass, pooled over passes"
GATEWAY_TARGETS: tuple[GatewayTarget, ...] = tuple(
    t
    for mode in ("non_stream", "stream")
    for t in (
        GatewayTarget(f"{mode}: latency added, glmserve / LiteLLM", "added_p50_ms", ADDED_P50, mode,
                      1 / 3, False),
        GatewayTarget(f"{mode}: max req/s, glmserve / LiteLLM", "max_rps_zero_errors", MAX_RPS, mode,
                      2.0, True),
    )
)  # fmt: skip


def rules() -> list[str]:
    return [
        f"sample size: >= {MIN_REQUESTS_PER_PASS} requests per pass, contender and level; "
        f">= {MIN_PASSES} passes, order alternating",
        "a failed request, a failed or skipped contender, a missing pass or figure: FAIL, with the reason",
        f"1-minute load average above {MAX_LOAD_PER_CPU} per CPU at the start: the run is INVALID",
    ]


def _lines(rows: tuple[Target, ...] | tuple[GatewayTarget, ...]) -> list[str]:
    head = "Targets (fixed before the run in bench/targets.py; statistic in brackets):"
    return [head, *(f"  {t.describe()}" for t in rows), *(f"  rule: {r}" for r in rules())]


def engine_lines() -> list[str]:
    return _lines(ENGINE_TARGETS)


def gateway_lines() -> list[str]:
    return _lines(GATEWAY_TARGETS)


def busy(loadavg_1min: float, cpus: int) -> bool:
    return loadavg_1min > MAX_LOAD_PER_CPU * max(cpus, 1)


def cpu_times() -> tuple[int, int]:
    """(steal, all) CPU time in jiffies since boot, summed over CPUs (0, 0 where unknown)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields)


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of CPU time stolen between two ``cpu_times`` readings."""
    elapsed = after[1] - before[1]
    return (after[0] - before[0]) / elapsed if elapsed > 0 else 0.0


def steal_since(before: tuple[int, int]) -> tuple[float, bool]:
    """The share of CPU time stolen since ``before`` (a ``cpu_times`` reading), printed, and
    whether it makes the run INVALID."""
    share = steal_share(before, cpu_times())
    print(f"CPU steal during the run: {share:.1%}")
    stolen = share > MAX_STEAL_SHARE
    if stolen:
        print(f"INVALID RUN: the hypervisor took {share:.1%} of CPU time (steal) during the run", flush=True)
    return share, stolen
