"""Entity-pair TSV (SanWen and similar): ``head \\t tail \\t relation \\t sentence``, one pair per line, several lines
per sentence. Lines are grouped into one record per sentence — over the whole file by default (the real SanWen files
repeat sentences non-consecutively), or only consecutive lines with ``group="consecutive"`` (streaming). Pairs whose
relation is a no-relation label (``unknown``, ``Other``, ``NA`` ...) are counted but not written as relations, so a
sentence with only such pairs becomes a record without relations (a negative example).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Optional

from iepile.data.formats.base import ReadOptions, ReadStats, iter_text_lines, record, relation, span_or_none, where
from iepile.records import RecordError

TASKS = ("RE",)


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    yield from group_pairs(_pairs(path, stats), opts, stats)


def _pairs(path: Path, stats: ReadStats) -> Iterator[tuple[str, str, Optional[tuple]]]:
    for number, line in iter_text_lines(path):
        if not line.strip():
            stats.note("blank line ignored", where(path, number))
            continue
        parts = line.split("\t")
        if len(parts) != 4:
            stats.reject(RecordError(f"expected 4 tab-separated columns (head, tail, relation, sentence), got "
                                     f"{len(parts)}", path=str(path), line=number, raw=line[:200]))
            continue
        head, tail, rel, sentence = parts
        yield where(path, number), sentence, (head, rel, tail, None, None)


def group_pairs(pairs: Iterable[tuple[str, str, Optional[tuple]]], opts: ReadOptions,
                stats: ReadStats) -> Iterator[dict]:
    """One record per sentence from (location, sentence, (head, relation, tail, head_start, tail_start)) items."""
    no_relation = set(opts.no_relation)
    groups: dict[str, list] = {}
    for at, sentence, pair in pairs:
        if opts.group == "consecutive" and groups and sentence not in groups:
            yield from _flush(groups, no_relation, stats)
            groups = {}
        groups.setdefault(sentence, []).append((at, pair))
    yield from _flush(groups, no_relation, stats)


def _flush(groups: dict[str, list], no_relation: set, stats: ReadStats) -> Iterator[dict]:
    for text, items in groups.items():
        relations, seen = [], set()
        for at, (head, rel, tail, head_start, tail_start) in items:
            if rel in no_relation:
                stats.note(f"no-relation pair ({rel}) not written as a relation", at)
                continue
            hs = span_or_none(text, head, head_start, stats, at, "head")
            ts = span_or_none(text, tail, tail_start, stats, at, "tail")
            key = (head, rel, tail, hs, ts)
            if key in seen:
                stats.skip("duplicate pair in the same sentence", at)
                continue
            seen.add(key)
            relations.append(relation(text, head, rel, tail, hs, ts))
        yield record(text, "relation", relations)
