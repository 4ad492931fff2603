"""The gateway benchmark's figures pooled over passes, its verdicts and its table.

``runs[name][mode]`` holds, pass by pass, the latency run and the ramp of one contender
(``None`` for a pass in which it did not run). The verdict of each ``targets.GATEWAY_TARGETS``
row is judged on the pooled figures; the per-pass quotients are printed beside it as the spread.
A missing pass, a contender that failed to start, a failed request in a latency run or fewer
than ``targets.MIN_REQUESTS_PER_PASS`` requests in one fails the row, with the reason; so does a
contender with errors at every level of the ramp (it has no request rate with zero errors).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

import targets
from gateway_load import Run
from targets import GatewayTarget

Pass = dict[str, Any] | None  # {"latency": Run, "ramp": [Run, ...]} or None: it did not run
Runs = dict[str, dict[str, list[Pass]]]


def _pooled_latency(passes: list[Pass]) -> Run | None:
    done = [p["latency"] for p in passes if p is not None]
    return Run.pooled(done) if done else None


def max_rps(passes: list[Pass]) -> float | None:
    """Highest pooled req/s of a ramp level with zero errors in every pass; None: no such level."""
    done = [p for p in passes if p is not None]
    if not done:
        return None
    levels = zip(*(p["ramp"] for p in done), strict=True)
    clean = [Run.pooled(list(level)).rps for level in levels if all(r.errors == 0 for r in level)]
    return max(clean) if clean else None


def _p50_ms(run: Run | None) -> float | None:
    p50 = run.percentile(50) if run is not None else None
    return None if p50 is None else p50 * 1000


def added_p50_ms(runs: Runs, name: str, mode: str, index: int | None = None) -> float | None:
    """p50 latency of ``name`` minus the direct call's, pooled (or in pass ``index``)."""

    def pick(who: str) -> list[Pass]:
        passes = runs.get(who, {}).get(mode, [])
        return passes if index is None else passes[index : index + 1]

    mine, direct = _p50_ms(_pooled_latency(pick(name))), _p50_ms(_pooled_latency(pick("direct")))
    return None if mine is None or direct is None else mine - direct


def _figure(runs: Runs, name: str, target: GatewayTarget, index: int | None = None) -> float | None:
    if target.figure == "added_p50_ms":
        return added_p50_ms(runs, name, target.mode, index)
    passes = runs.get(name, {}).get(target.mode, [])
    return max_rps(passes if index is None else passes[index : index + 1])


def _gaps(runs: Runs, name: str, target: GatewayTarget, planned: int, failed: dict[str, str]) -> list[str]:
    reasons = [f"{name} failed: {failed[name]}"] if name in failed else []
    passes = runs.get(name, {}).get(target.mode, [])
    done = [p for p in passes if p is not None]
    if len(done) < planned:
        reasons.append(f"{name} ran {len(done)} of {planned} passes ({target.mode})")
    if target.figure == "max_rps_zero_errors":
        if done and max_rps(passes) is None:
            reasons.append(f"{name} had errors at every concurrency level ({target.mode})")
        return reasons
    for i, p in enumerate(passes):
        if p is None:
            continue
        run: Run = p["latency"]
        if run.errors:
            reasons.append(f"{name} pass {i + 1}: {run.errors} failed requests ({run.error_samples[:1]})")
        if len(run.latencies) < targets.MIN_REQUESTS_PER_PASS:
            reasons.append(f"{name} pass {i + 1}: {len(run.latencies)} requests, the sample size is "
                           f"{targets.MIN_REQUESTS_PER_PASS}")  # fmt: skip
    return reasons


@dataclass(frozen=True)
class GatewayVerdict:
    target: GatewayTarget
    value: float | None
    per_pass: tuple[float | None, ...]
    result: str
    reasons: tuple[str, ...]
    invalid: bool

    @property
    def verdict(self) -> str:
        return f"INVALID ({self.result})" if self.invalid else self.result

    def line(self) -> str:
        t = self.target
        value = "    n/a" if self.value is None else f"{self.value:7.4f}"
        sign = ">=" if t.at_least else "<="
        known = [v for v in self.per_pass if v is not None]
        spread = "per pass: -"
        if known:
            each = " ".join("-" if v is None else f"{v:.3f}" for v in self.per_pass)
            spread = (f"per pass min/median/max {min(known):.3f} / {statistics.median(known):.3f} / "
                      f"{max(known):.3f} ({each})")  # fmt: skip
        lines = [
            f"{self.verdict:14} {value}  (target {sign} {t.threshold:.3f})  {t.name}",
            f"{'':23}{spread}",
        ]
        return "\n".join(lines + [f"{'':23}because: {r}" for r in self.reasons])

    def record(self) -> dict[str, Any]:
        return asdict(self) | {"verdict": self.verdict}


def _quotient(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def judge(
    runs: Runs, target: GatewayTarget, planned: int, failed: dict[str, str], invalid: bool
) -> GatewayVerdict:
    reasons: list[str] = []
    if planned < targets.MIN_PASSES:
        reasons.append(f"{planned} pass(es); the targets need {targets.MIN_PASSES}")
    names = ("glmserve", "litellm", "direct") if target.figure == "added_p50_ms" else ("glmserve", "litellm")
    for name in names:
        reasons += _gaps(runs, name, target, planned, failed)
    value = _quotient(_figure(runs, "glmserve", target), _figure(runs, "litellm", target))
    per_pass = tuple(
        _quotient(_figure(runs, "glmserve", target, i), _figure(runs, "litellm", target, i))
        for i in range(planned)
    )
    if reasons or value is None:
        result = "FAIL"
    else:
        result = (
            "PASS"
            if (value >= target.threshold if target.at_least else value <= target.threshold)
            else "FAIL"
        )
    return GatewayVerdict(target, value, per_pass, result, tuple(reasons), invalid)


def judge_all(runs: Runs, planned: int, failed: dict[str, str], invalid: bool) -> list[GatewayVerdict]:
    return [judge(runs, t, planned, failed, invalid) for t in targets.GATEWAY_TARGETS]


def pooled_summary(runs: Runs) -> dict[str, Any]:
    """Per contender and mode: the pooled latency run, added p50, and the pooled max req/s."""
    out: dict[str, Any] = {}
    for name, modes in runs.items():
        out[name] = {}
        for mode, passes in modes.items():
            latency = _pooled_latency(passes)
            out[name][mode] = {
                "latency": latency.summary() if latency else None,
                "added_p50_ms": added_p50_ms(runs, name, mode) if name != "direct" else None,
                "max_rps_zero_errors": max_rps(passes),
            }
    return out


def table(pooled: dict[str, Any]) -> list[str]:
    def num(v: float | None, digits: int = 2) -> str:
        return f"{'-':>8}" if v is None else f"{v:>8.{digits}f}"

    lines = [f"{'contender':10} {'mode':10} {'req':>7} {'err':>4} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} "
             f"{'max rps (0 err)':>16}"]  # fmt: skip
    for mode in ("non_stream", "stream"):
        for name, by_mode in pooled.items():
            row = by_mode.get(mode)
            lat = (row or {}).get("latency")
            if lat is None:
                lines.append(f"{name:10} {mode:10} {'not measured':>30}")
                continue
            rps = row["max_rps_zero_errors"]
            lines.append(
                f"{name:10} {mode:10} {lat['requests']:>7} {lat['errors']:>4} {num(lat['p50_ms'])} "
                f"{num(lat['p99_ms'])} {num(row['added_p50_ms'])} {'-' if rps is None else f'{rps:.1f}':>16}"
            )
    return lines
