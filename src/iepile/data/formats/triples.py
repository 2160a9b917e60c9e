"""NYT-style triple files: ``{text, triple_list: [[head, relation, tail], ...]}`` as a JSON array or JSON lines.

The source has no offsets, so each head and tail is located in the text (first occurrence); a string that does not
occur is kept without offsets and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from iepile.data.formats.base import (json_records, ReadOptions, ReadStats, need, record, relation, span_or_none,
                                 where)
from iepile.records import RecordError

TASKS = ("RE",)
TRIPLE_KEYS = ("triple_list", "triples", "relation_list")


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    yield from json_records(path, stats, lambda obj, line: [_record(obj, path, line, stats)])


def _record(obj: dict, path: Path, line: int, stats: ReadStats) -> dict:
    text = need(obj, "text", str, path, line)
    key = next((k for k in TRIPLE_KEYS if k in obj), "triple_list")
    relations = []
    for i, triple in enumerate(need(obj, key, list, path, line)):
        if not (isinstance(triple, list) and len(triple) == 3 and all(isinstance(x, str) for x in triple)):
            raise RecordError("a triple must be [head, relation, tail] strings", path=str(path), line=line,
                              field=f"{key}[{i}]")
        head, rel, tail = triple
        at = where(path, line)
        relations.append(relation(text, head, rel, tail, span_or_none(text, head, None, stats, at, "head"),
                                  span_or_none(text, tail, None, stats, at, "tail")))
    return record(text, "relation", relations, obj.get("id"))
