"""Verdicts of the engine benchmark's targets (``targets.ENGINE_TARGETS``) on a results document.

A verdict is the quotient of the two contenders' pooled figures against the target's threshold.
Anything that makes the figure incomplete fails it, with the reason: a contender that failed or
was skipped, a level or pass that is missing, fewer requests per pass than the sample size, a
failed request on either side, a figure that could not be computed. A run whose machine was
busy at the start is INVALID: each verdict then reads INVALID, its result kept beside it.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

import targets
from targets import Target

Results = dict[str, Any]


@dataclass(frozen=True)
class Verdict:
    target: Target
    value: float | None  # the quotient of the pooled figures
    per_pass: tuple[float | None, ...]  # the same quotient pass by pass: the spread
    result: str  # PASS, FAIL, or "-" for a row without a verdict
    reasons: tuple[str, ...]  # why the figure is incomplete (each one a FAIL)
    invalid: bool  # the run as a whole is invalid (busy machine)

    @property
    def verdict(self) -> str:
        if not self.target.verdict:
            return "-"
        return f"INVALID ({self.result})" if self.invalid else self.result

    def spread(self) -> str:
        known = [v for v in self.per_pass if v is not None]
        if not known:
            return "per pass: -"
        passes = " ".join("-" if v is None else f"{v:.3f}" for v in self.per_pass)
        low, mid, high = min(known), statistics.median(known), max(known)
        return f"per pass min/median/max {low:.3f} / {mid:.3f} / {high:.3f} ({passes})"

    def line(self) -> str:
        t = self.target
        value = "    n/a" if self.value is None else f"{self.value:7.4f}"  # 4 places: 0.9496 is no 0.950
        sign = ">=" if t.at_least else "<="
        goal = f"target {sign} {t.threshold:.2f}" if t.verdict else "extra row, no verdict"
        lines = [f"{self.verdict:14} {value}  ({goal})  {t.name}", f"{'':23}{self.spread()}"]
        lines += [f"{'':23}because: {r}" for r in self.reasons]
        return "\n".join(lines)

    def record(self) -> dict[str, Any]:
        return {
            "target": asdict(self.target),
            "value": self.value,
            "per_pass": list(self.per_pass),
            "result": self.result,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
        }


def _level(entry: dict[str, Any], concurrency: int) -> dict[str, Any] | None:
    return next((lv for lv in entry.get("levels", []) if lv["concurrency"] == concurrency), None)


def _gaps(results: Results, key: str, target: Target) -> list[str]:
    """Why ``key``'s figures at the target's level are incomplete; empty when they are not."""
    entry = results["contenders"].get(key)
    if entry is None:
        return [f"{key} was not run"]
    reasons = [f"{key} {entry['status']}: {entry['reason']}"] if entry["status"] != "ok" else []
    lv = _level(entry, target.level)
    if lv is None:
        return [*reasons, f"{key} has no figures at c={target.level}"]
    planned = results["settings"]["passes"]
    counts = lv.get("requests_per_pass", [])
    if len(counts) < planned:
        reasons.append(f"{key} ran {len(counts)} of {planned} passes at c={target.level}")
    if counts and min(counts) < targets.MIN_REQUESTS_PER_PASS:
        reasons.append(
            f"{key} sent {min(counts)} requests in a pass at c={target.level}; "
            f"the sample size is {targets.MIN_REQUESTS_PER_PASS}"
        )
    if lv["failed"]:
        errors = "; ".join(lv["errors"])[:200]
        reasons.append(f"{key}: {lv['failed']} of {lv['requests']} requests failed ({errors})")
    if lv.get(target.figure) is None:
        reasons.append(f"{key} has no {target.figure} at c={target.level}")
    return reasons


def _quotient(a: Any, b: Any) -> float | None:
    return float(a) / float(b) if a is not None and b else None


def judge(results: Results, target: Target) -> Verdict:
    reasons: list[str] = []
    if results["settings"]["passes"] < targets.MIN_PASSES:
        reasons.append(f"{results['settings']['passes']} pass(es); the targets need {targets.MIN_PASSES}")
    reasons += _gaps(results, target.top, target) + _gaps(results, target.bottom, target)
    top = _level(results["contenders"].get(target.top) or {}, target.level) or {}
    bottom = _level(results["contenders"].get(target.bottom) or {}, target.level) or {}
    value = _quotient(top.get(target.figure), bottom.get(target.figure))
    pairs = zip(top.get("per_pass", []), bottom.get("per_pass", []), strict=False)
    per_pass = tuple(_quotient(x.get(target.figure), y.get(target.figure)) for x, y in pairs)
    if not target.verdict:
        result = "-"
    elif reasons or value is None:
        result = "FAIL"
    else:
        ok = value >= target.threshold if target.at_least else value <= target.threshold
        result = "PASS" if ok else "FAIL"
    invalid = results["machine"].get("invalid_reason") is not None
    return Verdict(target, value, per_pass, result, tuple(reasons), invalid)


def judge_all(results: Results) -> list[Verdict]:
    return [judge(results, t) for t in targets.ENGINE_TARGETS]
