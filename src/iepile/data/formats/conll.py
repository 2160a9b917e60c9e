"""CoNLL-style NER files: one token per line with its tag in the last column, a blank line between sentences.

One tolerant decoder reads every common tag scheme — BIO (IOB2), IOB1, BMES, BIOES/BILOU and bare IO tags — because
real files mix them and a repaired tag sequence is better than a lost sentence; every repair is counted. Also handled:
``-DOCSTART-`` lines, CRLF line ends, tab or space separated columns (token first, tag last), Chinese
character-per-line files, and the Weibo NER variant in which each character carries a trailing word-position digit
(``科0``). Tag suffixes such as ``.NAM``/``.NOM`` are part of the type (``PER.NAM``); merge them with a label map.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Optional

from iepile.data.formats.base import (ReadOptions, ReadStats, entity, iter_text_lines, join_tokens, record,
                                      refuse_json, where)
from iepile.records import RecordError

TASKS = ("NER",)
_TAG = re.compile(r"^([BIMESLU])[-_](.+)$")
_PREFIXED = re.compile(r"^([A-Za-z])[-_](.*)$", re.S)
_PREFIX = {"B": "B", "I": "I", "M": "I", "E": "E", "L": "E", "S": "S", "U": "S"}
_DIGIT_TOKEN = re.compile(r"^.[0-9]$", re.S)
_ANY_DIGIT_TOKEN = re.compile(r"^.+[0-9]$", re.S)


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    refuse_json(path, "CoNLL (one token and its tag per line)")
    strip_digit = _uses_char_digit(path) if opts.char_digit == "auto" else opts.char_digit == "yes"
    if strip_digit:
        stats.note("tokens carry a word-position digit (Weibo style); digit removed", str(path))
    for first, rows in _sentences(path, stats):
        try:
            tokens = [_token(tok, strip_digit, path, number) for number, tok, _ in rows]
        except RecordError as err:
            stats.reject(err)
            continue
        yield _record(tokens, rows, opts, stats, path)


def _uses_char_digit(path: Path, sample: int = 500) -> bool:
    """Weibo-style files are recognised when, among the first tokens, all end with a digit and nearly all are one
    character plus a digit (the real Weibo files also hold emoji broken into two U+FFFD characters plus a digit)."""
    seen = single = 0
    for _, line in iter_text_lines(path):
        parts = _columns(line)
        if len(parts) < 2 or parts[0] == "-DOCSTART-":
            continue
        if not _ANY_DIGIT_TOKEN.match(parts[0]):
            return False
        seen += 1
        single += bool(_DIGIT_TOKEN.match(parts[0]))
        if seen >= sample:
            break
    return seen > 0 and single >= 0.95 * seen


def _columns(line: str) -> list[str]:
    """Tab-separated when the line has a tab (so a space can itself be a token), else whitespace-separated."""
    if "\t" in line:
        return line.split("\t")
    return line.split()


def _sentences(path: Path, stats: ReadStats) -> Iterator[tuple[int, list[tuple[int, str, str]]]]:
    """Rows (line number, token, tag) of each sentence; ``-DOCSTART-`` and blank lines end a sentence."""
    rows: list[tuple[int, str, str]] = []
    bad: Optional[RecordError] = None
    for number, line in iter_text_lines(path):
        if not line.strip():
            if rows or bad:
                if bad:
                    stats.reject(bad)
                else:
                    yield rows[0][0], rows
            rows, bad = [], None
            continue
        parts = _columns(line)
        if parts[0] == "-DOCSTART-":
            stats.note("-DOCSTART- line", where(path, number))
            continue
        if len(parts) < 2 or not parts[-1].strip():
            bad = bad or RecordError("expected a token and a tag column", path=str(path), line=number, raw=line)
            continue
        problem = _tag_problem(parts[-1].strip())
        if problem:
            bad = bad or RecordError(problem, path=str(path), line=number, field="tag", raw=line)
            continue
        rows.append((number, parts[0], parts[-1].strip()))
    if bad:
        stats.reject(bad)
    elif rows:
        yield rows[0][0], rows


def _token(token: str, strip_digit: bool, path: Path, number: int) -> str:
    if not strip_digit:
        return token
    if not _ANY_DIGIT_TOKEN.match(token):
        raise RecordError(f"expected a character followed by a position digit, got {token!r}", path=str(path),
                          line=number)
    return token[:-1]


def _tag_problem(tag: str) -> Optional[str]:
    """Why a tag cannot be read, or None. A one-letter prefix other than B/I/M/E/S/L/U (``X-foo``) or a prefix
    without a type (``B-``) is a broken tag, not an entity type of the IO scheme."""
    match = _PREFIXED.match(tag)
    if match is None:
        return None
    if match.group(1) not in _PREFIX:
        return f"tag {tag!r}: unknown prefix {match.group(1)!r} (expected B, I, M, E, S, L or U, or the tag O)"
    if not match.group(2).strip():
        return f"tag {tag!r} has no entity type after its prefix"
    return None


def _split_tag(tag: str) -> tuple[str, Optional[str]]:
    if tag in ("O", "o", "-"):
        return "O", None
    match = _TAG.match(tag)
    if match:
        return _PREFIX[match.group(1)], match.group(2)
    return "I", tag  # IO scheme: a bare type continues or starts an entity


def decode_tags(tags: list[str]) -> tuple[list[tuple[str, int, int]], list[str]]:
    """Entity spans (type, first token, last token + 1) from a tag sequence, and the repairs that were needed."""
    spans: list[tuple[str, int, int]] = []
    repairs: list[str] = []
    current: Optional[tuple[str, int]] = None

    def close(end: int) -> None:
        nonlocal current
        if current is not None:
            spans.append((current[0], current[1], end))
            current = None

    for i, tag in enumerate(tags):
        prefix, kind = _split_tag(tag)
        if prefix == "O":
            close(i)
        elif prefix == "B":
            close(i)
            current = (kind, i)
        elif prefix == "S":
            close(i)
            spans.append((kind, i, i + 1))
        elif prefix == "I":
            if current is None or current[0] != kind:
                close(i)
                repairs.append("entity starts with I-/M- (IOB1 or repaired BIO)")
                current = (kind, i)
        else:  # E
            if current is None or current[0] != kind:
                close(i)
                repairs.append("E- without a matching B- (taken as a one-token entity)")
                current = (kind, i)
            close(i + 1)
    close(len(tags))
    return spans, repairs


def _record(tokens: list[str], rows: list, opts: ReadOptions, stats: ReadStats, path: Path) -> dict:
    text, starts, ends = join_tokens(tokens, opts.language)
    spans, repairs = decode_tags([tag for _, _, tag in rows])
    for repair in repairs:
        stats.note(repair, where(path, rows[0][0]))
    entities = []
    for kind, first, last in spans:
        start, end = starts[first], ends[last - 1]
        entities.append(entity(text, text[start:end], kind, start, end))
    return record(text, "entity", entities)
