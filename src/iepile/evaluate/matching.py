"""Matching predicted tuples against gold tuples, and the answer clean-ups that happen before it.

Three matching modes (see :data:`MODES`) differ in three switches: whether duplicates count (multiset, as the
reference) or not (set), whether strings are normalised, and whether P and R are rounded before F1.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class Mode:
    name: str
    multiset: bool
    normalize: bool
    rounded: bool
    reference: bool
    repair: bool
    description: str


MODES: dict[str, Mode] = {
    "iepile": Mode("iepile", multiset=True, normalize=False, rounded=True, reference=True, repair=False,
                   description="reference-compatible: exact strings, multiset (duplicates count), P and R rounded "
                               "to 2 decimals before F1, answers parsed with json.loads only"),
    "strict": Mode("strict", multiset=False, normalize=False, rounded=False, reference=False, repair=True,
                   description="exact strings, each distinct tuple counted once per record, unrounded"),
    "normalized": Mode("normalized", multiset=False, normalize=True, rounded=False, reference=False, repair=True,
                       description="strict after case folding, whitespace collapsing and full-/half-width (NFKC) "
                                   "normalisation"),
}


def get_mode(name: str) -> Mode:
    try:
        return MODES[name]
    except KeyError:
        raise ValueError(f"unknown mode {name!r}; choose one of {', '.join(MODES)}") from None


_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """NFKC (full-width → half-width), case folding, runs of whitespace → one space, trimmed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def normalize_value(value: Any) -> Any:
    if isinstance(value, str):
        return normalize_text(value)
    if isinstance(value, tuple):
        return tuple(normalize_value(v) for v in value)
    return value


@dataclass
class Matched:
    """Outcome of matching one record at one level: matched tuples and what is left on each side."""

    correct: list[tuple]
    spurious: list[tuple]
    missed: list[tuple]

    @property
    def counts(self) -> tuple[int, int, int]:
        tp = len(self.correct)
        return tp, tp + len(self.spurious), tp + len(self.missed)


def match(gold: list[tuple], pred: list[tuple], multiset: bool) -> Matched:
    """Multiset: each prediction takes one remaining equal gold copy (the reference's loop, in O(n)).
    Set: both sides de-duplicated first."""
    if not multiset:
        gold, pred = list(dict.fromkeys(gold)), list(dict.fromkeys(pred))
    if gold == pred:
        return Matched(pred, [], [])
    remaining = Counter(gold)
    correct, spurious = [], []
    for item in pred:
        if remaining[item] > 0:
            remaining[item] -= 1
            correct.append(item)
        else:
            spurious.append(item)
    missed = []
    for item in gold:
        if remaining[item] > 0:
            remaining[item] -= 1
            missed.append(item)
    return Matched(correct, spurious, missed)


# -- keys not asked in a group's schema ---------------------------------------------------------------------------

def drop_off_schema(answer: dict, items: Optional[list], task) -> tuple[dict, int]:
    """The answer without keys that were not asked, and how many keys were dropped (top level and nested), read
    through the task's :meth:`~iepile.tasks.base.Task.answer_key` and ``nested_keys``. Nested keys are only looked
    at under non-empty values, which keeps the common case cheap."""
    if items is None:
        return answer, 0
    by_key: dict[str, list] = {}
    for item in items:
        try:
            key = task.answer_key(item)
        except (KeyError, TypeError):  # a malformed schema item of the instruction asks for nothing
            continue
        if isinstance(key, str):
            by_key.setdefault(key, []).append(item)
    kept, dropped = {}, 0
    for key, value in answer.items():
        asked = by_key.get(key)
        if asked is None:
            dropped += 1
            continue
        if value:
            nested = [task.nested_keys(item) for item in asked]
            if all(n is not None for n in nested):
                value, nested_dropped = _drop_nested(value, {k for n in nested for k in n})
                dropped += nested_dropped
        kept[key] = value
    return kept, dropped


def _drop_nested(value: Any, allowed: set[str]) -> tuple[Any, int]:
    """Roles or attributes not asked, inside events (``{"arguments": {...}}`` or a bare role map) or entities."""
    dropped = 0

    def keep(mapping: dict) -> dict:
        nonlocal dropped
        out = {k: v for k, v in mapping.items() if k in allowed}
        dropped += len(mapping) - len(out)
        return out

    if isinstance(value, list):
        events = []
        for event in value:
            if isinstance(event, dict) and isinstance(event.get("arguments"), dict):
                event = {**event, "arguments": keep(event["arguments"])}
            elif isinstance(event, dict) and "trigger" not in event:
                event = keep(event)
            events.append(event)
        return events, dropped
    if isinstance(value, dict):
        return {entity: keep(attrs) if isinstance(attrs, dict) else attrs for entity, attrs in value.items()}, dropped
    return value, dropped
