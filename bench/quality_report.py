"""``bench/quality.py``'s figures: per model, mode and example; the targets; a table and a PNG."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after use("Agg"): the backend must be chosen first

TARGET_MODEL, TARGET_MODE = "glm-4.6", "defaults"
MIN_STOPS, MIN_DISTINCT, MIN_VALID = 9, 0.8, 9  # of 10 seeds; fixed before the runs


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{"model/mode/example": figures}`` over the seeds of each group."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(f"{run['model']}/{run['mode']}/{run['example']}", []).append(run)
    summary = {}
    for key, group in groups.items():
        figures: dict[str, Any] = {
            "n": len(group),
            "natural_stops": sum(r["natural_stop"] for r in group),
            "completion_tokens_median": _median([r["completion_tokens"] for r in group]),
            "completion_tokens": [r["completion_tokens"] for r in group],
            "distinct_4_median": _median([r["distinct_4"] for r in group]),
            "distinct_4_min": min(
                (r["distinct_4"] for r in group if r["distinct_4"] is not None), default=None
            ),
            "wall_s_median": _median([r["wall_s"] for r in group]),
        }
        if "valid_call" in group[0] and key.endswith("/function_call"):
            figures["valid_calls"] = sum(r["valid_call"] for r in group)
        if key.endswith("/chatbot"):
            figures["recalled_name"] = sum(r["recalled_name"] for r in group)
        summary[key] = figures
    return summary


def targets(summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets on the quality default with its defaults; None where not measured."""
    story = summary.get(f"{TARGET_MODEL}/{TARGET_MODE}/story")
    call = summary.get(f"{TARGET_MODEL}/{TARGET_MODE}/function_call")
    out: dict[str, Any] = {}
    if story is not None:
        d4 = story["distinct_4_median"] or 0.0
        out["story_natural_stop"] = {"got": story["natural_stops"], "of": story["n"], "need": MIN_STOPS}
        out["story_natural_stop"]["pass"] = story["natural_stops"] >= MIN_STOPS
        out["story_distinct_4_median"] = {
            "got": round(d4, 4),
            "need": MIN_DISTINCT,
            "pass": d4 >= MIN_DISTINCT,
        }
    if call is not None:
        out["function_call_valid"] = {"got": call["valid_calls"], "of": call["n"], "need": MIN_VALID}
        out["function_call_valid"]["pass"] = call["valid_calls"] >= MIN_VALID
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(summary: dict[str, dict[str, Any]], verdicts: dict[str, Any]) -> str:
    lines = ["model          mode      example         stopped  tokens  distinct-4 (min)  wall s  extra"]
    for key, f in summary.items():
        model, mode, example = key.split("/")
        extra = ""
        if "valid_calls" in f:
            extra = f"valid get_weather(北京) {f['valid_calls']}/{f['n']}"
        elif "recalled_name" in f:
            extra = f"recalled 小明 {f['recalled_name']}/{f['n']}"
        lines.append(
            f"{model:14} {mode:9} {example:14} {f['natural_stops']:>3}/{f['n']:<3}  "
            f"{_fmt(f['completion_tokens_median'], '6.0f')}  {_fmt(f['distinct_4_median'], '.3f')} "
            f"({_fmt(f['distinct_4_min'], '.3f')})    {_fmt(f['wall_s_median'], '6.1f')}  {extra}"
        )
    lines.append("")
    for name, v in verdicts.items():
        got = f"{v['got']}/{v['of']}" if "of" in v else v["got"]
        lines.append(f"{'PASS' if v['pass'] else 'FAIL'}  {name}: {got} (need {v['need']})")
    return "\n".join(lines)


def write_png(summary: dict[str, dict[str, Any]], path: Path) -> None:
    """Three panels per example: natural-stop rate, median distinct-4-gram, median tokens."""
    keys = list(summary)
    examples = sorted({k.split("/")[2] for k in keys}, key=[k.split("/")[2] for k in keys].index)
    series = sorted({"/".join(k.split("/")[:2]) for k in keys})
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    width = 0.8 / max(1, len(series))
    panels = [
        ("natural stops / seeds", lambda f: f["natural_stops"] / f["n"]),
        ("median distinct-4-gram", lambda f: f["distinct_4_median"] or 0.0),
        ("median completion tokens (cap counts as stopped there)", lambda f: f["completion_tokens_median"]),
    ]
    for ax, (title, value) in zip(axes, panels, strict=True):
        for i, name in enumerate(series):
            xs = [j + i * width for j, ex in enumerate(examples) if f"{name}/{ex}" in summary]
            ys = [value(summary[f"{name}/{ex}"]) for ex in examples if f"{name}/{ex}" in summary]
            ax.bar(xs, ys, width, label=name, color=f"C{i}")
        ax.set_xticks(
            [j + width * (len(series) - 1) / 2 for j in range(len(examples))], examples, rotation=20
        )
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].axhline(MIN_STOPS / 10, color="k", ls=":", lw=1)
    axes[1].axhline(MIN_DISTINCT, color="k", ls=":", lw=1)
    axes[0].legend(fontsize=8)
    fig.suptitle("glmserve: the seed's examples, verbatim (no max_tokens), 10 seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
