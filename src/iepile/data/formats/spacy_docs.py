"""spaCy data: a ``.spacy`` DocBin (``doc.ents`` and every span group), or the offsets training JSON ``[[text,
{"entities": [[start, end, label]]}], ...]``. A DocBin is read with a blank pipeline of its own language (no model
is downloaded); spans that ``doc.ents`` and a span group both hold are kept once. Relations and events have no
standard place on a spaCy ``Doc``: not read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from iepile.data.formats.base import ReadOptions, ReadStats, entity, iter_json_items, record, where
from iepile.records import RecordError

TASKS = ("NER",)


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    if path.suffix == ".spacy":
        yield from _docbin(path, opts, stats)
        return
    for line, value in iter_json_items(path, stats):
        try:
            yield _offsets_record(value, path, line)
        except RecordError as err:
            stats.reject(err)


def _offsets_record(value, path: Path, line: int) -> dict:
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], dict)):
        raise RecordError("expected [text, {\"entities\": [[start, end, label]]}]", path=str(path), line=line)
    text, entities = value[0], []
    for i, item in enumerate(value[1].get("entities") or []):
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], int) and isinstance(item[1], int)
                and 0 <= item[0] < item[1] <= len(text) and isinstance(item[2], str) and item[2]):
            raise RecordError(f"entity {item!r} is not [start, end, label] inside the text", path=str(path),
                              line=line, field=f"entities[{i}]")
        entities.append(entity(text, text[item[0]:item[1]], item[2], item[0], item[1]))
    return record(text, "entity", entities)


def _docbin(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    try:
        import spacy
        from spacy.tokens import DocBin
    except ImportError:
        raise RecordError("reading .spacy files needs spaCy: pip install 'iepile[spacy]'", path=str(path)) from None
    docbin = DocBin().from_disk(path)
    language = opts.language if opts.language in ("en", "zh") else "xx"
    for number, doc in enumerate(docbin.get_docs(spacy.blank(language).vocab), start=1):
        spans = {(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents}
        for key, group in doc.spans.items():
            spans |= {(span.start_char, span.end_char, span.label_) for span in group}
        if not all(label for _, _, label in spans):
            stats.skip("span without a label", where(path, f"doc {number}"))
        items = [entity(doc.text, doc.text[s:e], label, s, e) for s, e, label in sorted(spans) if label]
        yield record(doc.text, "entity", items, doc.user_data.get("id") if doc.user_data else None)
