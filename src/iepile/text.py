"""Text rules, in one place: which characters are CJK, whether a text is Chinese, where a sentence ends.

Readers (tokens → text, sentence records of document formats), cleaning (jieba for Chinese text), the corpus token
count, constrained decoding (a copied span never crosses a sentence end) and extraction (windows of whole sentences
over a long text) all ask these questions; they used to answer them with five different CJK ranges and three
sentence rules.
"""

from __future__ import annotations

import re

#: CJK scripts: kana, CJK Unified Ideographs (extension A, the basic block, extensions B and later), Hangul
#: syllables, compatibility ideographs. A CJK character is a word on its own: no spaces around it.
CJK_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF),
              (0x20000, 0x3FFFF))
CJK_CLASS = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in CJK_RANGES)  # for a regex character class
CJK = re.compile(f"[{CJK_CLASS}]")

CJK_STOPS = frozenset("。！？")  # sentence ends of CJK text (no space follows them)
ASCII_STOPS = frozenset("!?")  # sentence ends before whitespace ('.' is checked for abbreviations)
CLOSERS = frozenset("\"')]}»”’」』")  # may follow a sentence end before its whitespace: 'He said "stop." Then'
ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr mt ft co corp inc ltd bros gen gov sen rep lt col capt sgt prof rev vs no nos jan feb mar "
    "apr jun jul aug sep sept oct nov dec".split())


def is_cjk(char: str) -> bool:
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in CJK_RANGES)


def has_cjk(text: str) -> bool:
    return CJK.search(text) is not None


def looks_chinese(tokens: list[str]) -> bool:
    """Per-record language guess: Chinese (no spaces between tokens) when CJK characters make up 30% of them."""
    chars = [c for token in tokens for c in token if not c.isspace()]
    return bool(chars) and sum(map(is_cjk, chars)) >= 0.3 * len(chars)


def language_of(text: str) -> str:
    """``zh`` for a text with any CJK character, else ``en`` (the two languages of IEPile's task sentences)."""
    return "zh" if has_cjk(text) else "en"


def is_abbreviation(word: str) -> bool:
    """Whether a '.' after ``word`` ends an abbreviation rather than a sentence: an initial ("F."), a dotted
    abbreviation ("U.S."), or a common title / month / company abbreviation ("Mr.", "Inc.", "Jan.")."""
    word = word.lstrip("(\"'[")
    if len(word) == 1:
        return word.isalpha()
    if "." in word:
        return any(char.isalpha() for char in word)
    return word.lower() in ABBREVIATIONS


_CLOSER_CLASS = "".join(map(re.escape, sorted(CLOSERS)))
_END = re.compile(f"([.!?]+)([{_CLOSER_CLASS}]*)(?=\\s+\\S)|[{''.join(sorted(CJK_STOPS))}]+[{_CLOSER_CLASS}]*")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentences as [start, end) spans of visible text (surrounding whitespace excluded), in order.

    A sentence ends at a line break; after "。", "！" or "？" (and closing quotes); and after ".", "!" or "?" (and
    closing quotes or brackets) followed by whitespace and a capital, a digit or an opening quote — except a '.'
    that ends an abbreviation ("Mr. Smith", "U.S. Open", "John F. Kennedy")."""
    spans = []
    for block in re.finditer(r"[^\n]+", text):
        start = block.start()
        for match in _END.finditer(text, block.start(), block.end()):
            if match.group(1) and not _ends_sentence(text, match, block.end()):
                continue
            spans.append((start, match.end()))
            start = match.end()
        spans.append((start, block.end()))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def _ends_sentence(text: str, match: re.Match, limit: int) -> bool:
    after = match.end()
    while after < limit and text[after].isspace():
        after += 1
    if after >= limit or not (text[after].isupper() or text[after].isdigit() or text[after] in "\"“‘([" or
                              is_cjk(text[after])):
        return False
    if match.group(1) == ".":
        start = match.start()
        while start > 0 and not text[start - 1].isspace():
            start -= 1
        return not is_abbreviation(text[start:match.start()])
    return True


def tile(spans: list[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """Spans widened to cover [0, length) without gaps (each takes the whitespace after it; the first starts at 0)."""
    if not spans:
        return [(0, length)] if length else []
    starts = [0] + [start for start, _ in spans[1:]]
    return list(zip(starts, starts[1:] + [length]))
