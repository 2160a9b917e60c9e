"""Precision, recall and F1 from counts; macro averages; bootstrap confidence intervals.

``rounded=True`` is the reference's arithmetic: P and R are percentages rounded to 2 decimals, and F1 is computed
from those rounded values (then rounded). A zero denominator gives 0, as in the reference.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Iterable, Optional


@dataclass
class Counts:
    tp: int = 0
    pred: int = 0
    gold: int = 0

    def add(self, tp: int, pred: int, gold: int) -> None:
        self.tp += tp
        self.pred += pred
        self.gold += gold


def prf(tp: int, pred: int, gold: int, rounded: bool) -> dict:
    precision = 100 * tp / pred if pred else 0.0
    recall = 100 * tp / gold if gold else 0.0
    if rounded:
        precision, recall = round(precision, 2), round(recall, 2)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    if rounded:
        f1 = round(f1, 2)
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "pred": pred, "gold": gold}


def scores(counts: Counts, rounded: bool) -> dict:
    return prf(counts.tp, counts.pred, counts.gold, rounded)


def macro(per_key: Iterable[dict], rounded: bool) -> dict:
    """Unweighted mean of P, R and F1 over the keys (types, sources or tasks); ``n`` says how many."""
    rows = list(per_key)
    if not rows:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "n": 0}
    means = {name: sum(row[name] for row in rows) / len(rows) for name in ("precision", "recall", "f1")}
    if rounded:
        means = {name: round(value, 2) for name, value in means.items()}
    return {**means, "n": len(rows)}


@dataclass
class PerRecord:
    """tp, pred and gold of every record at one level, compactly, for the bootstrap."""

    tp: array = field(default_factory=lambda: array("l"))
    pred: array = field(default_factory=lambda: array("l"))
    gold: array = field(default_factory=lambda: array("l"))

    def append(self, tp: int, pred: int, gold: int) -> None:
        self.tp.append(tp)
        self.pred.append(pred)
        self.gold.append(gold)


def bootstrap(records: PerRecord, samples: int, seed: int, rounded: bool, chunk: int = 64) -> Optional[dict]:
    """95% percentile intervals of micro P, R and F1, resampling records with replacement."""
    import numpy as np

    n = len(records.tp)
    if not n or samples <= 0:
        return None
    rng = np.random.default_rng(seed)
    columns = np.stack([np.asarray(column, dtype=np.int64) for column in (records.tp, records.pred, records.gold)],
                       axis=1)
    sums = []
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=size) if n <= 20000 else \
            np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(size)])
        sums.append(weights @ columns)
    totals = np.concatenate(sums)
    values = np.array([[row[k] for k in ("precision", "recall", "f1")]
                       for row in (prf(int(tp), int(pred), int(gold), rounded) for tp, pred, gold in totals)])
    low, high = np.percentile(values, [2.5, 97.5], axis=0)
    return {name: [round(float(lo), 4), round(float(hi), 4)]
            for name, lo, hi in zip(("precision", "recall", "f1"), low, high)} | {"samples": samples}
