"""The results document: target ratios with PASS/FAIL, the plain-text tables, the JSON file."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

Results = dict[str, Any]


@dataclass(frozen=True)
class Ratio:
    """A target ratio. ``value`` is the median of the paired per-pass quotients (the contenders of
    one pass ran back to back); with a single pass it is the quotient of the merged figures.
    ``merged`` is the quotient of the figures merged over every pass, kept beside it."""

    name: str
    value: float | None
    target: float
    at_least: bool  # True: value >= target passes; False: value <= target passes
    merged: float | None = None
    per_pass: tuple[float, ...] = ()

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "n/a"
        ok = self.value >= self.target if self.at_least else self.value <= self.target
        return "PASS" if ok else "FAIL"

    def line(self) -> str:
        value = "    n/a" if self.value is None else f"{self.value:7.4f}"  # 4 places: 0.9496 is no 0.950
        merged = "    n/a" if self.merged is None else f"{self.merged:7.4f}"
        sign = ">=" if self.at_least else "<="
        passes = " ".join(f"{v:.3f}" for v in self.per_pass) or "-"
        return (
            f"{self.verdict:4}  {value}  (target {sign} {self.target:.2f})  {self.name}\n"
            f"{'':12}merged over passes {merged}; per pass {passes}"
        )


def level(results: Results, key: str, concurrency: int) -> dict[str, Any] | None:
    entry = results["contenders"].get(key) or {}
    return next((lv for lv in entry.get("levels", []) if lv["concurrency"] == concurrency), None)


def quotient(results: Results, figure: str, concurrency: int, top: str, bottom: str) -> float | None:
    a, b = level(results, top, concurrency), level(results, bottom, concurrency)
    if a is None or b is None or a.get(figure) is None or not b.get(figure):
        return None
    return float(a[figure]) / float(b[figure])


def pass_quotients(results: Results, figure: str, concurrency: int, top: str, bottom: str) -> list[float]:
    """The same quotient pass by pass: within a pass the two contenders ran back to back."""
    a, b = level(results, top, concurrency), level(results, bottom, concurrency)
    if a is None or b is None:
        return []
    pairs = zip(a.get("per_pass", []), b.get("per_pass", []), strict=False)
    return [float(x[figure]) / float(y[figure]) for x, y in pairs if x.get(figure) and y.get(figure)]


def ratio(
    results: Results,
    name: str,
    figure: str,
    level_: int,
    pair: tuple[str, str],
    target: float,
    at_least: bool,
) -> Ratio:
    """Pass-paired when there are several passes: a slow spell of a shared machine moves one
    pass of one contender by 15-20%, which the merged figures (p95 above all) pass on whole."""
    merged = quotient(results, figure, level_, *pair)
    per_pass = pass_quotients(results, figure, level_, *pair)
    value = statistics.median(per_pass) if len(per_pass) > 1 else merged
    return Ratio(name, value, target, at_least, merged, tuple(per_pass))


def ratios(results: Results) -> list[Ratio]:
    server = ("glmserve", "llama-server")
    found = [
        ratio(
            results,
            "single-stream decode tok/s (c=1, median per request): glmserve / xllamacpp in-process",
            "decode_tok_s_p50", 1, ("glmserve", "xllamacpp-direct"), 0.95, True,
        )
    ]  # fmt: skip
    for c in (1, 4, 8):
        name = f"aggregate tok/s at c={c}: glmserve / llama.cpp server"
        found.append(ratio(results, name, "aggregate_tok_s", c, server, 0.95, True))
        name = f"TTFT p95 at c={c}: glmserve / llama.cpp server"
        found.append(ratio(results, name, "ttft_p95_s", c, server, 1.10, False))
    name = "aggregate tok/s at c=4: glmserve / llama.cpp server at default settings"
    found.append(ratio(results, name, "aggregate_tok_s", 4, ("glmserve", "llama-server-default"), 1.2, True))
    return found


def _num(value: float | None, scale: float = 1.0, width: int = 8, digits: int = 2) -> str:
    return f"{'-':>{width}}" if value is None else f"{value * scale:{width}.{digits}f}"


def level_table(results: Results) -> list[str]:
    head = (
        f"{'contender':36} {'c':>2} {'req':>4} {'fail':>4} {'tokens':>7} {'source':>6} {'tok/s':>8} "
        f"{'ttft50':>8} {'ttft95':>8} {'itl95ms':>8} {'decode/s':>8}"
    )
    lines = [head, "-" * len(head)]
    for entry in results["contenders"].values():
        for lv in entry.get("levels", []):
            lines.append(
                f"{entry['label'][:36]:36} {lv['concurrency']:>2} {lv['requests']:>4} {lv['failed']:>4} "
                f"{lv['completion_tokens']:>7} {lv['token_source']:>6} {_num(lv['aggregate_tok_s'])} "
                f"{_num(lv['ttft_p50_s'], digits=3)} {_num(lv['ttft_p95_s'], digits=3)} "
                f"{_num(lv['itl_p95_s'], 1000, digits=1)} {_num(lv['decode_tok_s_p50'])}"
            )
    return lines


def conversation_table(results: Results) -> list[str]:
    head = f"{'contender':36} {'turn':>4} {'prompt':>7} {'cached':>7} {'ttft s':>8}"
    lines = [head, "-" * len(head)]
    for entry in results["contenders"].values():
        conversation = entry.get("conversation")
        if not conversation:
            continue
        for turn in conversation["turns"]:
            cached = "-" if turn["cached_tokens"] is None else str(turn["cached_tokens"])
            prompt = "-" if turn["prompt_tokens"] is None else str(turn["prompt_tokens"])
            lines.append(
                f"{entry['label'][:36]:36} {turn['turn']:>4} {prompt:>7} {cached:>7} "
                f"{_num(turn['ttft_s'], digits=3)}{'' if turn['ok'] else '  FAILED: ' + str(turn['error'])}"
            )
        speedup = conversation["ttft_speedup"]
        lines.append(f"{'':36} TTFT turn 1 / mean of later turns: {_num(speedup, width=0)}x")
    return lines


def text(results: Results) -> str:
    out = ["", "Load (aggregate tok/s over the level's wall time; TTFT and ITL in seconds/ms)"]
    out += level_table(results)
    out += ["", "Multi-turn conversation (history re-sent each turn; prompt cache)"]
    out += conversation_table(results)
    notes = [f"  {e['label']}: {e['reason']}" for e in results["contenders"].values() if e.get("reason")]
    if notes:
        out += ["", "Not measured:", *notes]
    out += ["", "Target ratios (verdict on the median of the paired per-pass quotients)"]
    out += [r.line() for r in ratios(results)]
    if warning := busy_warning(results["machine"]):
        out += ["", warning]
    return "\n".join(out)


def busy_warning(machine: dict[str, Any]) -> str | None:
    """Other work on the machine skews every figure; say so when the load says it was there."""
    cpus = machine["cpu_count"] or 1
    before = machine["loadavg_start"][0]
    if before <= 0.5 * cpus:
        return None
    after = machine.get("loadavg_end", [float("nan")])[0]
    return (
        f"WARNING: the machine was busy before the benchmark began (1-min load {before:.2f} on {cpus} "
        f"CPUs; {after:.2f} at the end): treat these figures as a smoke test, not a measurement."
    )


def attach_ratios(results: Results) -> None:
    results["ratios"] = [asdict(r) | {"verdict": r.verdict} for r in ratios(results)]


def write_json(results: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
