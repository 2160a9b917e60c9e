"""Where an extracted string is in the text: every occurrence, matched exactly first, then after folding full-width
forms and whitespace (Chinese text often mixes ``，`` and ``,``, ``（`` and ``(``), ASCII words on word boundaries;
and how a long text is cut into windows at sentence boundaries with overlap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from iepile.text import sentence_spans, tile

NAN = "NAN"  # an argument or attribute the text does not give


# -- grounding -------------------------------------------------------------------------------------------------------

def fold_char(char: str) -> str:
    """One character → one character: full-width ASCII forms to half-width, ideographic space to space, other
    whitespace to space. Length-preserving, so folded positions are text positions."""
    code = ord(char)
    if 0xFF01 <= code <= 0xFF5E:
        return chr(code - 0xFEE0)
    if code == 0x3000 or char.isspace():
        return " "
    return char


def folded(text: str) -> tuple[str, list[int]]:
    """Folded text with runs of spaces collapsed, and for each folded character its position in ``text``."""
    chars, positions = [], []
    for position, char in enumerate(text):
        folded = fold_char(char)
        if folded == " " and chars and chars[-1] == " ":
            continue
        chars.append(folded)
        positions.append(position)
    return "".join(chars), positions


def _all_occurrences(haystack: str, needle: str) -> list[int]:
    found, start = [], haystack.find(needle)
    while start >= 0:
        found.append(start)
        start = haystack.find(needle, start + 1)
    return found


def _on_word_edges(text: str, start: int, end: int) -> bool:
    """ASCII words are matched whole ("US" is not found inside "USA"); other scripts match anywhere."""
    def joined(left: int, right: int) -> bool:
        if left < 0 or right >= len(text):
            return False
        a, b = text[left], text[right]
        return a.isascii() and a.isalnum() and b.isascii() and b.isalnum()

    return not joined(start - 1, start) and not joined(end - 1, end)


@dataclass
class Grounding:
    text: str
    offsets: list[list[int]]
    match: Optional[str]  # "exact", "normalized" or None (not found: hallucinated or paraphrased)

    @property
    def ambiguous(self) -> bool:
        return len(self.offsets) > 1


class TextGrounder:
    """All occurrences of answer strings in one text; the folded text is built once per text."""

    def __init__(self, text: str):
        self.text = text
        self.folded: Optional[tuple[str, list[int]]] = None

    def ground(self, value: str) -> Grounding:
        value = value.strip()
        if not value:
            return Grounding(value, [], None)
        spans = self._spans(self.text, value, None)
        if spans:
            return Grounding(value, spans, "exact")
        if self.folded is None:
            self.folded = folded(self.text)
        folded_value, _ = folded(value)
        spans = self._spans(self.folded[0], folded_value.strip(), self.folded[1])
        return Grounding(value, spans, "normalized" if spans else None)

    def _spans(self, haystack: str, needle: str, positions: Optional[list[int]]) -> list[list[int]]:
        if not needle:
            return []
        starts = _all_occurrences(haystack, needle)
        whole = [s for s in starts if _on_word_edges(haystack, s, s + len(needle))]
        starts = whole or starts
        if positions is None:
            return [[s, s + len(needle)] for s in starts]
        return [[positions[s], positions[s + len(needle) - 1] + 1] for s in starts]


def answer_strings(value: Any) -> list[str]:
    """Every extracted string in an answer value (dict keys too: KG entities), without ``NAN``."""
    if isinstance(value, str):
        return [] if value == NAN or not value.strip() else [value]
    if isinstance(value, list):
        return [s for item in value for s in answer_strings(item)]
    if isinstance(value, dict):
        keys = [k for k in value if isinstance(k, str) and is_entity_key(value)]
        return keys + [s for item in value.values() for s in answer_strings(item)]
    return []


def is_entity_key(mapping: dict) -> bool:
    """KG maps entity → attributes: its keys are text, unlike the fixed keys of RE/EE objects."""
    return bool(mapping) and all(isinstance(v, dict) for v in mapping.values())


# -- long texts --------------------------------------------------------------------------------------------------------

def _split_long(text: str, start: int, end: int, count: Callable[[str], int], budget: int) -> list[tuple[int, int]]:
    """A sentence longer than the budget: pieces that fit, cut at a space when one is near the cut."""
    pieces = []
    while start < end:
        low, high = start + 1, end
        while low < high:  # longest prefix that fits
            middle = (low + high + 1) // 2
            if count(text[start:middle]) <= budget:
                low = middle
            else:
                high = middle - 1
        cut = low
        space = text.rfind(" ", start + (cut - start) // 2, cut)
        if cut < end and space > start:
            cut = space + 1
        pieces.append((start, cut))
        start = cut
    return pieces


def windows(text: str, count: Callable[[str], int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Windows of whole sentences of at most ``budget`` tokens; each next window repeats up to ``overlap`` tokens of
    the previous one's last sentences, so an entity on a window edge is seen whole at least once."""
    if count(text) <= budget:
        return [(0, len(text))]
    units: list[tuple[int, int]] = []
    for start, end in tile(sentence_spans(text), len(text)):
        units += _split_long(text, start, end, count, budget) if count(text[start:end]) > budget else [(start, end)]
    sizes = [count(text[s:e]) for s, e in units]
    spans, first = [], 0
    while first < len(units):
        last, used = first, sizes[first]
        while last + 1 < len(units) and used + sizes[last + 1] <= budget:
            last += 1
            used += sizes[last]
        spans.append((units[first][0], units[last][1]))
        if last + 1 >= len(units):
            break
        next_first, carried = last + 1, 0
        while next_first - 1 > first and carried + sizes[next_first - 1] <= overlap:
            next_first -= 1
            carried += sizes[next_first]
        first = next_first
    return spans
