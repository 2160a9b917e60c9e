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

def asked_keys(items: Optional[list]) -> Optional[dict[str, Optional[set[str]]]]:
    """Top-level answer key of each schema item → the nested keys it allows (roles, attributes; ``None`` = any).
    Read from the item's shape, so any task's items work: strings, SPO predicates, event types, entity types."""
    if items is None:
        return None
    keys: dict[str, Optional[set[str]]] = {}
    for item in items:
        if isinstance(item, str):
            keys[item] = None
        elif isinstance(item, dict):
            key = item.get("predicate") or item.get("event_type") or item.get("entity_type")
            nested = item.get("arguments", item.get("attributes"))
            if isinstance(key, str):
                allowed = keys.get(key, set()) if isinstance(nested, list) else None
                keys[key] = None if allowed is None else allowed | set(nested)
    return keys


def drop_off_schema(answer: dict, items: Optional[list]) -> tuple[dict, int]:
    """The answer without keys that were not asked, and how many keys were dropped (top level and nested)."""
    if items is not None and all(type(item) is str for item in items):
        asked = set(items)
        if all(key in asked for key in answer):
            return answer, 0
    keys = asked_keys(items)
    if keys is None:
        return answer, 0
    kept, dropped = {}, 0
    for key, value in answer.items():
        if key not in keys:
            dropped += 1
            continue
        allowed = keys[key]
        if allowed is not None:
            value, nested_dropped = _drop_nested(value, allowed)
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


def count_off_schema(answer: dict, items: Optional[list]) -> int:
    return drop_off_schema(answer, items)[1]
