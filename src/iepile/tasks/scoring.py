"""Helpers shared by the tasks' ``gold_tuples`` / ``answer_tuples`` (the evaluator's view of a task).

Every tuple a task produces for scoring is ``(level, label, *spans)``: ``level`` names the metric it counts towards
(``entity``, ``trigger``, ``argument`` ...), ``label`` is what the per-type breakdown groups on (a string, or a
``(event_type, role)`` pair), and ``spans`` are the strings copied from the text, which the error analysis compares.

``reference=True`` reproduces the reference scorer's conversions (§3.3/§3.4 of the behaviour spec) for ``iepile``
mode; otherwise gold tuples are exactly what the training target can express, so perfect answers score 100.
"""

from __future__ import annotations

from typing import Any, Iterator

NAN = "NAN"
KG_EMPTY = ("无", "nan")


def strings(value: Any, reference: bool, nan_is_absent: bool = True) -> list[str]:
    """The string values of an answer slot: a string, or the strings of a list. For arguments and attributes
    ``NAN`` means absent (not for entities: "NAN" is a news agency in CoNLL-2003); the reference kept empty strings,
    we drop them."""
    items = value if type(value) is list else [value]
    if reference:
        return [v for v in items if type(v) is str and not (nan_is_absent and v == NAN)]
    if nan_is_absent:
        return [v for v in items if type(v) is str and v.strip() and v.upper() != NAN]
    return [v for v in items if type(v) is str and v.strip()]


def dict_items(answer: Any) -> Iterator[tuple[str, Any]]:
    """``(key, value)`` pairs of an answer object (nothing for anything else)."""
    return iter(answer.items()) if isinstance(answer, dict) else iter(())


def list_of(value: Any, reference: bool) -> list:
    """A list slot; lenient mode also takes a lone value where a list was asked."""
    if isinstance(value, list):
        return value
    return [] if reference or value is None else [value]


def unique_tuples(tuples: list[tuple]) -> list[tuple]:
    return list(dict.fromkeys(tuples))
