"""Schema sampling: negatives, hard negatives, ordering, ``split_num`` chunking and per-record random generators.

Everything here is deterministic by construction: label collections are ordered lists (never sets), and each record
draws from its own ``random.Random`` seeded from (global seed, record position), so output does not depend on
``PYTHONHASHSEED``, on the worker count, or on which records came before.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Optional, Sequence, TypeVar

T = TypeVar("T")


def record_rng(seed: int, position: int) -> random.Random:
    """A generator that depends only on the seed and the record's position in its input."""
    return random.Random(seed * 0x9E3779B97F4A7C15 + position)


class LazyRandom:
    """A per-record generator seeded on first use: with the default options (all negatives, sorted order) nothing is
    drawn, and seeding a generator for every record would cost more than the rest of the conversion."""

    __slots__ = ("_seed", "_position", "_rng")

    def __init__(self, seed: int, position: int):
        self._seed, self._position, self._rng = seed, position, None

    def __getattr__(self, name: str):
        if self._rng is None:
            self._rng = record_rng(self._seed, self._position)
        return getattr(self._rng, name)


def binomial(rng: random.Random, n: int, p: float) -> int:
    """Number of successes in ``n`` Bernoulli(p) draws (the reference's ``numpy`` binomial, without numpy state)."""
    if p >= 1:
        return n
    if p <= 0:
        return 0
    return sum(rng.random() < p for _ in range(n))


def chunk(items: Sequence[T], split_num: int) -> list[list[T]]:
    """The reference's splitting rule: chunks of ``split_num``; a remainder of at least ``max(1, n // 2)`` items is
    its own chunk, a smaller one joins the last chunk; ``-1`` means one chunk. An empty list gives no chunk (the
    reference emitted an instruction with an empty schema)."""
    items = list(items)
    if not items:
        return []
    if split_num == -1 or len(items) <= split_num:
        return [items]
    if split_num <= 0:
        raise ValueError(f"split_num must be a positive integer or -1, got {split_num}")
    full = max(len(items) // split_num, 1) * split_num
    chunks = [items[i:i + split_num] for i in range(0, full, split_num)]
    rest = items[full:]
    if len(rest) >= max(1, split_num // 2):
        chunks.append(rest)
    elif rest:
        chunks[-1].extend(rest)
    return chunks


def order(items: list[T], rng: random.Random, random_sort: bool, key=None) -> list[T]:
    """Shuffled with ``--random-sort``, otherwise sorted by code point (deterministic for train and test)."""
    if random_sort:
        items = list(items)
        rng.shuffle(items)
        return items
    return sorted(items, key=key)


@dataclass
class SamplingOptions:
    neg_ratio: float = 1.0
    max_neg_per_pos: Optional[int] = None
    random_sort: bool = False
    split_num: int = 4
    hard_negatives: Optional[dict[str, list[str]]] = None

    @cached_property  # asked once per record on the converter's hot path; options never change after start
    def draws_nothing(self) -> bool:
        """True when sampling keeps every candidate in sorted order: the schema items then depend only on which
        labels a record contains, and can be computed once per distinct set of labels."""
        return ((self.neg_ratio >= 1 or self.neg_ratio < 0) and not self.random_sort
                and self.max_neg_per_pos is None and self.hard_negatives is None)


@dataclass
class SamplingStats:
    """What hard-negative sampling met, summed over records (merged across workers)."""

    hard_missing_positive: int = 0
    hard_outside_label_set: int = 0

    def add(self, other: "SamplingStats") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def sample_negatives(positives: list[str], all_labels: list[str], rng: random.Random, opts: SamplingOptions,
                     stats: SamplingStats) -> list[str]:
    """Bernoulli-rate negatives (§2.3): ``k ~ Binomial(|All|, p)``, at least one when there are no positives, at most
    the available ones and at most ``max_neg_per_pos`` per positive. ``p < 0`` keeps all negatives."""
    present = set(positives)
    candidates = [label for label in all_labels if label not in present]
    if opts.neg_ratio == 0:
        chosen: list[str] = []
    elif opts.neg_ratio < 0:
        chosen = candidates
    else:
        k = binomial(rng, len(all_labels), opts.neg_ratio)
        if not positives:
            k = max(k, 1)
        k = min(k, len(candidates), _neg_cap(positives, opts))
        chosen = candidates if k == len(candidates) else rng.sample(candidates, k)
    if opts.neg_ratio < 0 and opts.max_neg_per_pos is not None:
        chosen = chosen[:_neg_cap(positives, opts)]
    return chosen


def _neg_cap(positives: list[str], opts: SamplingOptions) -> int:
    if opts.max_neg_per_pos is None:
        return 1 << 62
    return opts.max_neg_per_pos * max(len(positives), 1)


def sample_hard_negatives(positives: list[str], all_labels: list[str], rng: random.Random, opts: SamplingOptions,
                          stats: SamplingStats) -> list[str]:
    """Cluster mode (§2.4): positives, their hard negatives from the dictionary, and ``split_num`` other labels.

    With ``max_neg_per_pos`` the hard ones are kept first (so a capped run asks the confusable labels, not random
    ones), and when there are more of them than the cap allows they are drawn at random: taking the dictionary's
    first entries would ask the same label every time (CoNLL-2004's ``Live_In`` was 65 % of all negatives), and the
    model learns that this label is always empty rather than how it differs from its neighbours.

    Fixed against the reference: a positive missing from the dictionary and dictionary values outside the label set
    are counted instead of crashing or leaking into prompts."""
    hard = opts.hard_negatives or {}
    cap = _neg_cap(positives, opts)
    if len(all_labels) == 1:
        chosen = list(all_labels)
    elif not positives:
        k = max(binomial(rng, len(all_labels), opts.neg_ratio / 2), 1)
        chosen = rng.sample(all_labels, min(k, len(all_labels)))
    else:
        similar = _dictionary_negatives(positives, set(all_labels), hard, stats)
        if len(similar) > cap:
            similar = rng.sample(similar, cap)
        chosen = list(positives) + similar
        taken = set(chosen)
        others = [label for label in all_labels if label not in taken]
        chosen += rng.sample(others, min(len(others), opts.split_num if opts.split_num > 0 else len(others)))
    present = set(positives)
    return [label for label in chosen if label not in present][:cap]


def _dictionary_negatives(positives: list[str], label_set: set[str], hard: dict[str, list[str]],
                          stats: SamplingStats) -> list[str]:
    """The labels the dictionary lists as similar to any positive, in dictionary order, once each."""
    similar: list[str] = []
    for label in positives:
        if label not in hard:
            stats.hard_missing_positive += 1
            continue
        for candidate in hard[label]:
            if candidate not in label_set:
                stats.hard_outside_label_set += 1
            elif candidate not in positives and candidate not in similar:
                similar.append(candidate)
    return similar


def choose_labels(positives: list[str], all_labels: list[str], rng: random.Random, opts: SamplingOptions,
                  stats: SamplingStats) -> list[str]:
    """Negatives (plain or hard) followed by positives, before ordering."""
    sampler = sample_hard_negatives if opts.hard_negatives is not None else sample_negatives
    return sampler(positives, all_labels, rng, opts, stats) + positives


def load_hard_negatives(path: str | Path, task: str, dataset: Optional[str] = None) -> dict[str, list[str]]:
    """A flat ``label → [similar labels]`` dictionary, or the nested task → dataset → dictionary file
    (``hard_dict.json``) with ``dataset`` naming the section."""
    from iepile.fileio import read_json

    path = Path(path)
    try:
        data: Any = read_json(path)
    except OSError as err:
        raise ValueError(f"{path}: cannot read hard-negative dictionary: {err.strerror or err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a hard-negative dictionary must be a JSON object")
    if data and all(isinstance(v, dict) for v in data.values()):
        if task not in data:
            raise ValueError(f"{path}: nested dictionary has no section for task {task} (has {', '.join(data)})")
        sections = data[task]
        if dataset is None or dataset not in sections:
            raise ValueError(f"{path}: nested dictionary needs --hard-negative-dataset, one of: "
                             f"{', '.join(sorted(sections))}")
        data = sections[dataset]
    for key, values in data.items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError(f"{path}: entry {key!r}: expected a list of label strings")
    return {key: list(dict.fromkeys(v for v in values if v != key)) for key, values in data.items()}
