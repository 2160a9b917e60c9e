"""``iepile eval``: score model answers against gold annotations.

``evaluate_file(path, options)`` reads a prediction file (JSON lines with ``task``, ``source``, ``id``,
``instruction``, ``label``, ``output`` and, from ``iepile convert``, ``record_index``) and returns the result document
described in :mod:`iepile.evaluate.results`. ``evaluate_lines`` does the same for lines already in memory.
"""

from __future__ import annotations

import os
from typing import Iterable, Optional

from iepile.inference.answers import ParsedAnswer, parse_answer
from iepile.evaluate.scorer import EvalError, EvalOptions, Evaluator, NotContiguous

__all__ = ["EvalError", "EvalOptions", "ParsedAnswer", "evaluate_file", "evaluate_lines", "parse_answer"]


def evaluate_file(path: str | os.PathLike, options: Optional[EvalOptions] = None) -> dict:
    """Score a prediction file (``-`` reads standard input). Records whose lines are contiguous (as convert and
    predict write them) are scored while reading, so memory does not grow with the file; if a record's lines are
    scattered, the file is read again holding every record until the end."""
    import sys

    from iepile.evaluate.results import build_result

    options = options or EvalOptions()
    path = str(path)
    if path == "-":
        return evaluate_lines(_decoded(sys.stdin.buffer), options, path)
    try:
        evaluator = _score_stream(path, options, streaming=True)
    except NotContiguous:
        evaluator = _score_stream(path, options, streaming=False)
    return _checked(build_result(evaluator, path), options, path)


def _checked(result: dict, options: EvalOptions, path: str) -> dict:
    """The result, or an :class:`EvalError` when gold is missing from it (records missing, lines unreadable, bad
    gold labels) and ``allow_missing`` was not given: scores over part of the gold would look better than they
    are."""
    problems = result["problems"]
    if not problems["count"] or options.allow_missing:
        return result
    shown = "; ".join(problems["examples"][:5]) + ("; ..." if len(problems["examples"]) > 5 else "")
    counts = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in problems["kinds"].items())
    raise EvalError(f"{path or 'predictions'}: {counts}: {shown}. The scores would leave that gold out: fix the "
                    "file, or pass --allow-missing to score what can be read (the problems are then reported)")


def _score_stream(path: str, options: EvalOptions, streaming: bool) -> Evaluator:
    evaluator = Evaluator(options, streaming=streaming, path=path)
    with open(path, "rb") as stream:
        for number, data in enumerate(stream, start=1):
            evaluator.add_raw(data, number)
    evaluator.finish()
    return evaluator


def _decoded(stream) -> list:
    """Standard input can be read once only: its lines are kept (raw) and scored holding every record."""
    return [(number, data) for number, data in enumerate(stream, start=1)]


def evaluate_lines(lines: Iterable, options: Optional[EvalOptions] = None, path: str = "") -> dict:
    """Score prediction lines given as dicts (or ``(line number, raw bytes)`` pairs)."""
    from iepile.evaluate.results import build_result

    options = options or EvalOptions()
    evaluator = Evaluator(options, path=path if path != "-" else "")
    for number, line in enumerate(lines, start=1):
        if isinstance(line, tuple):
            evaluator.add_raw(line[1], line[0])
        else:
            evaluator.add_line(line, number)
    evaluator.finish()
    return _checked(build_result(evaluator, path), options, path)
