"""The results as one PNG: throughput, TTFT and ITL against concurrency, and TTFT per turn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after use("Agg"): the backend must be chosen first
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator


def _series(levels: list[dict[str, Any]], figure: str, scale: float = 1.0) -> tuple[list[int], list[float]]:
    points = [(lv["concurrency"], lv[figure] * scale) for lv in levels if lv.get(figure) is not None]
    return [c for c, _ in points], [v for _, v in points]


def _entries(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(colour, entry) for each contender; one colour per contender across every panel."""
    return [(f"C{i}", entry) for i, entry in enumerate(results["contenders"].values())]


def _concurrency_axis(ax: Axes, results: dict[str, Any], title: str) -> None:
    levels = results["settings"]["levels"]
    ax.set_xscale("log", base=2)
    ax.set_xticks(levels, [str(c) for c in levels])
    ax.set_xlabel("concurrency")
    ax.set_title(title)
    ax.grid(alpha=0.3)


def _by_concurrency(ax: Axes, results: dict[str, Any], figure: str, scale: float, title: str) -> None:
    for colour, entry in _entries(results):
        xs, ys = _series(entry.get("levels", []), figure, scale)
        if xs:  # a contender measured at one level only gets a larger marker, to stay visible
            marker, size = ("D", 9) if len(xs) == 1 else ("o", 6)
            ax.plot(xs, ys, marker=marker, markersize=size, color=colour, label=entry["label"])
    _concurrency_axis(ax, results, title)


def _ttft(ax: Axes, results: dict[str, Any]) -> None:
    for colour, entry in _entries(results):
        for figure, style in (("ttft_p50_s", "-"), ("ttft_p95_s", "--")):
            xs, ys = _series(entry.get("levels", []), figure)
            if xs:
                ax.plot(xs, ys, marker="o", linestyle=style, color=colour)
    _concurrency_axis(ax, results, "TTFT p50 (solid) / p95 (dashed), s")


def _turns(ax: Axes, results: dict[str, Any]) -> None:
    for colour, entry in _entries(results):
        conversation = entry.get("conversation") or {}
        points = [(t["turn"], t["ttft_s"]) for t in conversation.get("turns", []) if t["ttft_s"] is not None]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color=colour)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("turn")
    ax.set_title("multi-turn TTFT, s (history re-sent each turn)")
    ax.grid(alpha=0.3)


def write_png(results: dict[str, Any], path: Path) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    _by_concurrency(axes[0][0], results, "aggregate_tok_s", 1.0, "aggregate output tok/s")
    _ttft(axes[0][1], results)
    _by_concurrency(axes[1][0], results, "itl_p95_s", 1000.0, "inter-token latency p95, ms")
    _turns(axes[1][1], results)
    axes[0][0].legend(fontsize=8)
    machine, settings = results["machine"], results["settings"]
    fig.suptitle(
        f"glmserve engine benchmark {results['date']} - {settings['model_name']}, "
        f"{machine['cpu_count']} CPUs, {settings['threads']} threads, {settings['max_tokens']} tokens/request"
        f"{' (quick)' if settings['quick'] else ''}"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
