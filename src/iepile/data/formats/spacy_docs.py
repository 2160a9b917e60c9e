"""spaCy data: a ``.spacy`` DocBin (``doc.ents`` and every span group), or the offsets training JSON ``[[text,
{"entities": [[start, end, label]]}], ...]``. A DocBin is read with a blank pipeline of its own language (no model
is downloaded); spans that ``doc.ents`` and a span group both hold are kept once (trigger groups,
``<key>_triggers``, are not entities). Relations and events have no standard place on a spaCy ``Doc``: they are read
(``--task RE``, ``EE``, ``EET``, ``EEA``) from ``doc.user_data["iepile_relations"]`` / ``["iepile_events"]``, where
:func:`write` and the ``iepile`` pipeline component's DocBins keep them as record items with their offsets; a doc
without them is reported, not read as empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from iepile.data.formats.base import (ReadOptions, ReadStats, argument, entity, event, iter_json_items, record,
                                      relation, where)
from iepile.records import RecordError

TASKS = ("NER", "RE", "EE", "EET", "EEA")
TRIGGERS = "_triggers"  # suffix of the span group holding event triggers


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
        rid = doc.user_data.get("id") if doc.user_data else None
        if opts.task != "NER":
            try:
                yield _linked_record(doc, opts.task, path, number, rid)
            except RecordError as err:
                stats.reject(err)
            continue
        spans = {(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents}
        for key, group in doc.spans.items():
            if not key.endswith(TRIGGERS):
                spans |= {(span.start_char, span.end_char, span.label_) for span in group}
        if not all(label for _, _, label in spans):
            stats.skip("span without a label", where(path, f"doc {number}"))
        items = [entity(doc.text, doc.text[s:e], label, s, e) for s, e, label in sorted(spans) if label]
        yield record(doc.text, "entity", items, rid)


def _linked_record(doc, task: str, path: Path, number: int, rid) -> dict:
    """Relations or events kept in ``user_data`` as record items; each is checked against the text."""
    key = "iepile_relations" if task == "RE" else "iepile_events"
    items = (doc.user_data or {}).get(key)
    if not isinstance(items, (list, tuple)):  # a DocBin gives its lists back as tuples
        raise RecordError(f"doc {number} has no user_data[{key!r}] (relations and events are read from iepile's "
                          "DocBins only)", path=str(path))
    text, out = doc.text, []
    try:
        for item in items:
            if task == "RE":
                out.append(relation(text, item["head"], item["relation"], item["tail"],
                                    (item["head_start"], item["head_end"]), (item["tail_start"], item["tail_end"]),
                                    item.get("head_type"), item.get("tail_type")))
            else:
                arguments = [] if task == "EET" else [argument(text, a["argument"], a["role"], a["start"], a["end"])
                                                      for a in item.get("arguments") or []]
                out.append(event(text, item["event_type"], item["event_trigger"], item["trigger_start"],
                                 item["trigger_end"], arguments))
    except (KeyError, TypeError) as err:
        raise RecordError(f"doc {number}: an item of user_data[{key!r}] lacks {err}", path=str(path)) from None
    return record(text, "relation" if task == "RE" else "event", out, rid)


# -- writing: records → a DocBin (pre-annotations, round trips) ------------------------------------------------------

def write(records: list[dict], path: Path, language: str = "en", spans_key: str = "iepile") -> int:
    """A ``.spacy`` DocBin: each record's spans as :func:`doc_spans` places them (entities, relation heads and tails,
    event arguments in ``doc.spans[spans_key]``, every occurrence and overlaps kept; triggers in
    ``doc.spans[spans_key + "_triggers"]``; the longest non-overlapping entities as ``doc.ents``), relations and events
    as record items in ``doc.user_data["iepile_relations"]`` / ``["iepile_events"]``, the spans of ambiguous items in
    ``["iepile_ambiguous"]``, ungrounded strings in ``["iepile_ungrounded"]``. Returns the number of docs."""
    import spacy
    from spacy.tokens import DocBin

    from iepile.fileio import atomic_output

    nlp = spacy.blank(language if language in ("en", "zh") else "xx")
    docbin = DocBin(store_user_data=True)
    for rec in records:
        doc = nlp.make_doc(rec["text"])
        placed = doc_spans(doc, rec)
        set_spans(doc, placed, spans_key, ents="entity" in rec)
        for key in ("relation", "event"):
            if key in rec:
                doc.user_data[f"iepile_{key}s"] = rec[key]
        doc.user_data["iepile_ambiguous"] = placed["ambiguous"]
        doc.user_data["iepile_ungrounded"] = rec.get("ungrounded") or []
        docbin.add(doc)
    with atomic_output(path) as tmp:
        docbin.to_disk(tmp)
    return len(records)


def doc_spans(doc, rec: dict) -> dict:
    """One record's items as spans of ``doc`` (characters widened to whole tokens): ``entities`` (entities, relation
    heads and tails, event arguments), ``relations`` as ``(head, relation, tail)``, ``events`` as ``{"event_type",
    "trigger", "arguments": [(role, span)]}``, and ``ambiguous`` (the offsets of items flagged so). An item whose
    characters make no span is left out."""
    placed: dict = {"entities": [], "triggers": [], "relations": [], "events": [], "ambiguous": []}

    def span(start: int, end: int, label: str, ambiguous: bool, group: str = "entities"):
        found = doc.char_span(start, end, label=label, alignment_mode="expand")
        if found is not None:
            placed[group].append(found)
            if ambiguous and [start, end] not in placed["ambiguous"]:
                placed["ambiguous"].append([start, end])
        return found

    for e in rec.get("entity") or []:
        span(e["start"], e["end"], e["entity_type"], bool(e.get("ambiguous")))
    for r in rec.get("relation") or []:
        head = span(r["head_start"], r["head_end"], r.get("head_type") or "entity", bool(r.get("ambiguous")))
        tail = span(r["tail_start"], r["tail_end"], r.get("tail_type") or "entity", bool(r.get("ambiguous")))
        if head is not None and tail is not None:
            placed["relations"].append((head, r["relation"], tail))
    for ev in rec.get("event") or []:
        ambiguous = bool(ev.get("ambiguous"))
        trigger = span(ev["trigger_start"], ev["trigger_end"], ev["event_type"], ambiguous, "triggers")
        if trigger is not None:
            arguments = [(a["role"], span(a["start"], a["end"], a["role"], ambiguous)) for a in ev["arguments"]]
            placed["events"].append({"event_type": ev["event_type"], "trigger": trigger,
                                     "arguments": [(role, s) for role, s in arguments if s is not None]})
    return placed


def set_spans(doc, placed: dict, spans_key: str, ents: bool) -> None:
    """``doc.spans`` from :func:`doc_spans`, and ``doc.ents`` (the longest non-overlapping spans) when ``ents``: for
    NER records only, relation heads and event arguments are not entities."""
    from spacy.util import filter_spans

    doc.spans[spans_key] = placed["entities"]
    if placed["triggers"]:
        doc.spans[spans_key + TRIGGERS] = placed["triggers"]
    if ents:
        doc.ents = filter_spans(placed["entities"])
