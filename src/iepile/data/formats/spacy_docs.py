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


# -- writing: records → a DocBin (pre-annotations, round trips) ------------------------------------------------------

def write(records: list[dict], path: Path, language: str = "en", spans_key: str = "iepile") -> int:
    """A ``.spacy`` DocBin: every entity in ``doc.spans[spans_key]`` (overlaps and every occurrence kept; an item
    flagged ``ambiguous`` is listed in ``doc.user_data["iepile_ambiguous"]``), the longest non-overlapping ones as
    ``doc.ents``; ungrounded strings in ``doc.user_data["iepile_ungrounded"]``. Returns the number of docs."""
    import spacy
    from spacy.tokens import DocBin
    from spacy.util import filter_spans

    from iepile.fileio import atomic_output

    nlp = spacy.blank(language if language in ("en", "zh") else "xx")
    docbin = DocBin(store_user_data=True)
    for rec in records:
        doc = nlp.make_doc(rec["text"])
        spans, ambiguous = [], []
        for e in rec.get("entity") or []:
            span = doc.char_span(e["start"], e["end"], label=e["entity_type"], alignment_mode="expand")
            if span is not None:
                spans.append(span)
                if e.get("ambiguous"):
                    ambiguous.append([e["start"], e["end"]])
        doc.spans[spans_key] = spans
        doc.ents = filter_spans(spans)
        doc.user_data["iepile_ambiguous"] = ambiguous
        doc.user_data["iepile_ungrounded"] = rec.get("ungrounded") or []
        docbin.add(doc)
    with atomic_output(path) as tmp:
        docbin.to_disk(tmp)
    return len(records)
