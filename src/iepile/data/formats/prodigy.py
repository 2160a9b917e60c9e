"""Prodigy JSONL (``ner_manual``, ``ner``, ``choice`` views): ``{"text", "spans": [{start, end, label}], "answer"}``.

Accepted examples become NER records; ``reject`` and ``ignore`` answers are skipped and counted (a rejected binary
span is a negative, not an entity). Records without spans are kept (nothing to extract). An entity-linking record
(``accept`` holding the chosen option ids) keeps its spans; the chosen id is not carried (counted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from iepile.data.formats.base import ReadOptions, ReadStats, entity, json_records, need, record, where
from iepile.records import RecordError

TASKS = ("NER",)


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    yield from json_records(path, stats, lambda obj, line: _records(obj, path, line, stats))


def _records(obj: dict, path: Path, line: int, stats: ReadStats) -> list[dict]:
    text = need(obj, "text", str, path, line)
    answer = obj.get("answer", "accept")
    if answer != "accept":
        stats.skip(f"Prodigy answer {answer!r}", where(path, line))
        return []
    if obj.get("accept") and obj.get("options"):
        stats.skip("entity-linking choice (accepted option id) not carried", where(path, line))
    entities = []
    for i, span in enumerate(obj.get("spans") or []):
        start, end, label = (span.get(k) for k in ("start", "end", "label")) if isinstance(span, dict) else (None,) * 3
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            raise RecordError(f"span offsets {start}-{end} outside the text", path=str(path), line=line,
                              field=f"spans[{i}]")
        if not isinstance(label, str) or not label:
            raise RecordError("span without a label", path=str(path), line=line, field=f"spans[{i}].label")
        if "text" in span and span["text"] != text[start:end]:
            raise RecordError(f"span text {span['text']!r} is not {text[start:end]!r}", path=str(path), line=line,
                              field=f"spans[{i}].text")
        entities.append(entity(text, text[start:end], label, start, end))
    return [record(text, "entity", entities, obj.get("_task_hash"))]
