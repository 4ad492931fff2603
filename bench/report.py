"""The results document: the plain-text tables, the verdicts (``verdicts``), the JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import targets
import verdicts

Results = dict[str, Any]


def _num(value: float | None, scale: float = 1.0, width: int = 8, digits: int = 2) -> str:
    return f"{'-':>{width}}" if value is None else f"{value * scale:{width}.{digits}f}"


def level_table(results: Results) -> list[str]:
    head = (
        f"{'contender':36} {'c':>2} {'req/pass':>9} {'fail':>4} {'tokens':>7} {'source':>6} {'tok/s':>8} "
        f"{'ttft50':>8} {'ttft95':>8} {'itl95ms':>8} {'decode/s':>8}"
    )
    lines = [head, "-" * len(head)]
    for entry in results["contenders"].values():
        for lv in entry.get("levels", []):
            per_pass = "+".join(str(n) for n in lv["requests_per_pass"])
            lines.append(
                f"{entry['label'][:36]:36} {lv['concurrency']:>2} {per_pass:>9} {lv['failed']:>4} "
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
    out = [
        "",
        "Load, pooled over passes (aggregate tok/s over the level's wall time; TTFT s, ITL ms; "
        f"p95 only with >= {targets.MIN_REQUESTS_PER_PASS} requests per pass)",
    ]
    out += level_table(results)
    out += ["", "Multi-turn conversation (history re-sent each turn; prompt cache)"]
    out += conversation_table(results)
    notes = [f"  {e['label']}: {e['reason']}" for e in results["contenders"].values() if e.get("reason")]
    if notes:
        out += ["", "Not measured:", *notes]
    out += ["", "Targets (verdict on the pooled figures; the per-pass quotients are the spread)"]
    out += [v.line() for v in verdicts.judge_all(results)]
    out += ["", summary_line(results)]
    return "\n".join(out)


def summary_line(results: Results) -> str:
    judged = [v for v in verdicts.judge_all(results) if v.target.verdict]
    passed = sum(v.result == "PASS" for v in judged)
    counts = f"{passed} PASS, {len(judged) - passed} FAIL of {len(judged)} targets"
    if reason := results["machine"].get("invalid_reason"):
        return f"RUN INVALID ({reason}); results otherwise: {counts}"
    return f"RUN VALID: {counts}"


def attach_verdicts(results: Results) -> None:
    results["verdicts"] = [v.record() for v in verdicts.judge_all(results)]
    results["summary"] = summary_line(results)


def write_json(results: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
