"""``iepile eval``: score model answers against gold annotations.

``evaluate_file(path, options)`` reads a prediction file (JSON lines with ``task``, ``source``, ``id``,
``instruction``, ``label``, ``output`` and, from ``iepile convert``, ``record_index``) and returns the result document
described in :mod:`iepile.evaluate.results`. ``evaluate_lines`` does the same for lines already in memory.
"""

from __future__ import annotations

import os
from typing import Iterable, Optional

from iepile.evaluate.parsing import ParsedAnswer, parse_answer
from iepile.evaluate.scorer import EvalError, EvalOptions, Evaluator

__all__ = ["EvalError", "EvalOptions", "ParsedAnswer", "evaluate_file", "evaluate_lines", "parse_answer"]


def evaluate_file(path: str | os.PathLike, options: Optional[EvalOptions] = None) -> dict:
    """Score a prediction file, streaming it line by line (``-`` reads standard input)."""
    import sys

    from iepile.evaluate.results import build_result

    evaluator = Evaluator(options or EvalOptions())
    path = str(path)
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")
    try:
        for number, data in enumerate(stream, start=1):
            evaluator.add_raw(data, number)
    finally:
        if path != "-":
            stream.close()
    evaluator.finish()
    return build_result(evaluator, path)


def evaluate_lines(lines: Iterable[dict], options: Optional[EvalOptions] = None) -> dict:
    """Score prediction lines given as dicts."""
    from iepile.evaluate.results import build_result

    evaluator = Evaluator(options or EvalOptions())
    for number, line in enumerate(lines, start=1):
        evaluator.add_line(line, number)
    evaluator.finish()
    return build_result(evaluator)
