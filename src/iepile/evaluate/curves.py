"""Choosing ``--threshold`` on a dev split and drawing its precision/recall trade-off.

A threshold changes every decision between an empty list and opening one, so each point is a whole prediction run;
these helpers only pick and draw from the scored points ``{threshold, dataset, precision, recall, f1}`` (threshold
None = greedy decoding).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Optional


def _best(f1_by_threshold: dict[Optional[float], float]) -> Optional[float]:
    """The threshold with the highest F1; ties go to greedy decoding, then to the threshold nearest 0.5."""
    return max(f1_by_threshold, key=lambda t: (f1_by_threshold[t], t is None,
                                               -abs((t if t is not None else 0.5) - 0.5)))


def best_threshold(points: list[dict]) -> tuple[Optional[float], dict[Optional[float], float]]:
    """The threshold with the best F1 averaged over datasets (each dataset weighs the same, whatever its size), and
    that average for every threshold."""
    per_threshold: dict[Optional[float], list[float]] = defaultdict(list)
    for point in points:
        per_threshold[point["threshold"]].append(point["f1"])
    macro = {t: round(sum(f1s) / len(f1s), 2) for t, f1s in per_threshold.items()}
    return _best(macro), macro


def best_thresholds_per_dataset(points: list[dict], fallback: Optional[float],
                                min_gold: int) -> dict[str, Optional[float]]:
    """Each dataset's own best threshold where its dev sample holds at least ``min_gold`` gold items, ``fallback``
    (the macro choice) where it holds fewer: one number rarely suits every dataset (a model that barely opens
    DuEE's event lists wants a low one, a model that over-predicts CoNLL-2004's pairs a high one), but a handful of
    gold items cannot tell thresholds apart."""
    chosen = {}
    for dataset in dict.fromkeys(p["dataset"] for p in points):
        mine = [p for p in points if p["dataset"] == dataset]
        enough = min(p["gold"] for p in mine) >= min_gold
        chosen[dataset] = _best({p["threshold"]: p["f1"] for p in mine}) if enough else fallback
    return chosen


def plot_precision_recall(points: list[dict], dataset: str, path: Path, chosen: Optional[float]) -> None:
    """One dataset's precision against recall, a marker per threshold (greedy as a square), the chosen one ringed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mine = sorted((p for p in points if p["dataset"] == dataset and p["threshold"] is not None),
                  key=lambda p: p["threshold"])
    greedy = [p for p in points if p["dataset"] == dataset and p["threshold"] is None]
    figure, axes = plt.subplots(figsize=(5, 4))
    if mine:
        axes.plot([p["recall"] for p in mine], [p["precision"] for p in mine], marker="o", label="--threshold")
        for p in mine:
            axes.annotate(f"{p['threshold']:g}", (p["recall"], p["precision"]), textcoords="offset points",
                          xytext=(4, 4), fontsize=8)
    for p in greedy:
        axes.plot([p["recall"]], [p["precision"]], marker="s", linestyle="", color="black", label="greedy")
    for p in mine + greedy:
        if p["threshold"] == chosen:
            axes.plot([p["recall"]], [p["precision"]], marker="o", markersize=14, fillstyle="none", color="red",
                      linestyle="", label=f"chosen ({'greedy' if chosen is None else f'{chosen:g}'})")
    axes.set_xlim(0, 100)
    axes.set_ylim(0, 100)
    axes.set_xlabel("recall (%)")
    axes.set_ylabel("precision (%)")
    axes.set_title(f"{dataset}: precision/recall by threshold (dev)")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)
