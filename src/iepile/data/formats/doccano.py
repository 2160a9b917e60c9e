"""doccano exports: sequence labelling ``{"text", "label": [[start, end, "TYPE"], ...]}`` (also ``labels``, and the
custom columns ``column_data``/``column_label`` of its import examples), the relation export ``{"text", "entities":
[{id, start_offset, end_offset, label}], "relations": [{from_id, to_id, type}]}`` (JSON lines, or one
pretty-printed object), and the legacy v1 export ``{"text", "annotations": [{label, start_offset, end_offset}]}``,
whose labels are numeric ids (kept as strings and noted: name them with ``--label-map '{"2": "ORG"}'``).

``--task NER`` (default) writes the entities; ``--task RE`` the relations, with head/tail types. Offsets are checked
against the text; a span given twice is kept once (noted); a record without text is an error naming its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from iepile.data.formats.base import ReadOptions, ReadStats, entity, json_records, record, relation, where
from iepile.records import RecordError

TASKS = ("NER", "RE")
TEXT_KEYS = ("text", "data", "column_data")
LABEL_KEYS = ("label", "labels", "column_label")


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    yield from json_records(path, stats, lambda obj, line: [_record(obj, path, line, opts, stats)])


def _text(obj: Any, path: Path, line: int) -> str:
    if not isinstance(obj, dict):
        raise RecordError("expected a JSON object", path=str(path), line=line)
    for key in TEXT_KEYS:
        if isinstance(obj.get(key), str):
            return obj[key]
    raise RecordError(f"no text: none of {', '.join(TEXT_KEYS)} is a string", path=str(path), line=line,
                      field="text")


def _spans(obj: dict, text: str, path: Path, line: int, stats: ReadStats) -> dict[Any, tuple[str, int, int]]:
    """Entity id (or position) → (type, start, end), checked and de-duplicated."""
    found: list[tuple[Any, str, Any, Any, str]] = []  # (id, type, start, end, field)
    if isinstance(obj.get("entities"), list):
        for i, ent in enumerate(obj["entities"]):
            ent = ent if isinstance(ent, dict) else {}
            found.append((ent.get("id", i), ent.get("label"), ent.get("start_offset"), ent.get("end_offset"),
                          f"entities[{i}]"))
    elif isinstance(obj.get("annotations"), list):
        for i, ann in enumerate(obj["annotations"]):
            ann = ann if isinstance(ann, dict) else {}
            label = ann.get("label")
            if isinstance(label, int):
                stats.note("legacy doccano label id (no name in the file; see --label-map)", where(path, line))
                label = str(label)
            found.append((i, label, ann.get("start_offset"), ann.get("end_offset"), f"annotations[{i}]"))
    else:
        key = next((k for k in LABEL_KEYS if k in obj), None)
        for i, item in enumerate(obj.get(key) or [] if key else []):
            item = item if isinstance(item, list) and len(item) == 3 else [None, None, None]
            found.append((i, item[2], item[0], item[1], f"{key}[{i}]"))
    spans, seen = {}, set()
    for ident, label, start, end, field in found:
        if not isinstance(label, str) or not label.strip():
            raise RecordError("a span needs a label name", path=str(path), line=line, field=field)
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            raise RecordError(f"offsets {start}-{end} are not a span of the {len(text)}-character text",
                              path=str(path), line=line, field=field)
        if (label, start, end) in seen:
            stats.note("span given twice, kept once", where(path, line))
            continue
        seen.add((label, start, end))
        spans[ident] = (label, start, end)
    return spans


def _record(obj: Any, path: Path, line: int, opts: ReadOptions, stats: ReadStats) -> dict:
    text = _text(obj, path, line)
    spans = _spans(obj, text, path, line, stats)
    rid = obj.get("id")
    if opts.task == "NER":
        return record(text, "entity", [entity(text, text[s:e], label, s, e) for label, s, e in spans.values()], rid)
    relations = []
    for i, rel in enumerate(obj.get("relations") or []):
        rel = rel if isinstance(rel, dict) else {}
        head, tail, kind = spans.get(rel.get("from_id")), spans.get(rel.get("to_id")), rel.get("type")
        if head is None or tail is None or not isinstance(kind, str):
            raise RecordError("a relation needs from_id and to_id of entities and a type", path=str(path),
                              line=line, field=f"relations[{i}]")
        relations.append(relation(text, text[head[1]:head[2]], kind, text[tail[1]:tail[2]], head[1:], tail[1:],
                                  head[0], tail[0]))
    return record(text, "relation", relations, rid)


# -- writing: records → doccano's import shape (pre-annotations, round trips) ---------------------------------------

def write(records: list[dict], task: str) -> list[dict]:
    """doccano import objects: ``{"text", "label": [[start, end, type]]}`` (NER) or ``{"text", "entities",
    "relations"}`` (RE). Items need offsets; an item's ``ambiguous`` flag goes to the object's ``iepile`` notes."""
    out = []
    for rec in records:
        obj: dict = {"text": rec["text"]}
        notes = [_value(item) for item in rec.get("entity") or rec.get("relation") or [] if item.get("ambiguous")]
        if task == "NER":
            obj["label"] = [[e["start"], e["end"], e["entity_type"]] for e in rec.get("entity") or []]
        else:
            entities: dict[tuple, int] = {}
            relations = []
            for rel in rec.get("relation") or []:
                ids = [entities.setdefault((rel[f"{side}_start"], rel[f"{side}_end"], rel.get(f"{side}_type") or ""),
                                           len(entities)) for side in ("head", "tail")]
                relations.append({"id": len(relations), "from_id": ids[0], "to_id": ids[1], "type": rel["relation"]})
            obj["entities"] = [{"id": i, "start_offset": s, "end_offset": e, "label": label or "entity"}
                               for (s, e, label), i in entities.items()]
            obj["relations"] = relations
        if notes or rec.get("ungrounded"):
            obj["iepile"] = {"ambiguous": notes, "ungrounded": rec.get("ungrounded") or []}
        out.append(obj)
    return out


def _value(item: dict) -> str:
    return item.get("entity") or f"{item.get('head')} {item.get('relation')} {item.get('tail')}"
