"""Error analysis: why each unmatched prediction and gold item is wrong.

Every predicted and gold item of a record gets one kind. Pairs consume one prediction and one gold item:

* ``wrong_type``   – same span(s), different label (the confusion the paper's hard negatives target);
* ``reversed``     – same label, subject and object swapped (two-span tuples: RE, SPO, KG);
* ``boundary``     – same label, every span equal or overlapping a gold span, at least one not equal;
Then the unpaired ones:
* ``hallucinated`` – a predicted span that does not occur in the input text;
* ``spurious``     – any other unmatched prediction;
* ``missed``       – an unmatched gold item.
``correct`` counts matched items; ``parse_failure`` (answers that could not be parsed) is counted per answer.
Kinds are tried in this order; the first that applies wins.
"""

from __future__ import annotations

from typing import Callable, Iterator, Optional

PAIR_KINDS = ("wrong_type", "reversed", "boundary")
KINDS = ("correct", "wrong_type", "reversed", "boundary", "hallucinated", "spurious", "missed", "parse_failure")
_NO_SPAN = ("", "NAN")


def spans_of(item: tuple) -> tuple:
    """The text strings of a ``(level, label, *spans)`` tuple."""
    return item[2:]


def classify(spurious: list[tuple], missed: list[tuple], text: str) -> Iterator[tuple[str, Optional[tuple], Optional[tuple]]]:
    """``(kind, predicted, gold)`` for every unmatched item of one record and level."""
    gold_left = list(missed)
    pred_left = []
    for pred in spurious:
        paired = _pair(pred, gold_left, text)
        if paired:
            kind, index = paired
            yield kind, pred, gold_left.pop(index)
        else:
            pred_left.append(pred)
    for pred in pred_left:
        yield ("hallucinated" if _hallucinated(pred, text) else "spurious"), pred, None
    for gold in gold_left:
        yield "missed", None, gold


def _pair(pred: tuple, gold_left: list[tuple], text: str) -> Optional[tuple[str, int]]:
    spans = spans_of(pred)
    if not spans:
        return None
    tests: list[tuple[str, Callable[[tuple], bool]]] = [
        ("wrong_type", lambda gold: spans_of(gold) == spans and gold[1] != pred[1]),
        ("reversed", lambda gold: len(spans) == 2 and spans[0] != spans[1] and gold[1] == pred[1]
         and spans_of(gold) == spans[::-1]),
        ("boundary", lambda gold: gold[1] == pred[1] and len(spans_of(gold)) == len(spans)
         and all(_overlap(p, g, text) for p, g in zip(spans, spans_of(gold)))),
    ]
    for kind, test in tests:
        for index, gold in enumerate(gold_left):
            if test(gold):
                return kind, index
    return None


def _overlap(pred: str, gold: str, text: str) -> bool:
    """Equal, nested, or overlapping where they first occur in the text."""
    if pred == gold or (pred and gold and (pred in gold or gold in pred)):
        return True
    start_p, start_g = text.find(pred), text.find(gold)
    if min(start_p, start_g) < 0 or not pred or not gold:
        return False
    return start_p < start_g + len(gold) and start_g < start_p + len(pred)


def _hallucinated(pred: tuple, text: str) -> bool:
    return any(span not in _NO_SPAN and span not in text for span in spans_of(pred) if isinstance(span, str))
