"""SPO-list JSON lines (DuIE, DuIE 2.0, CMeIE, SKE): ``{text, spo_list: [{subject, subject_type, predicate, object,
object_type}]}`` where ``object``/``object_type`` are plain strings or ``{"@value": ...}`` maps.

DuIE 2.0's complex objects carry extra slots (``{"@value": "x", "inWork": "y"}``); the ``@value`` slot is the triple
the IEPile corpus keeps, and every extra slot is counted as skipped. Default task SPO (types kept, schema
``subjecttype_predicate_objecttype``); ``--task RE`` writes the same records with a relation-name schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from iepile.data.formats.base import (json_records, ReadOptions, ReadStats, need, record, relation, span_or_none,
                                 where)
from iepile.records import RecordError

TASKS = ("SPO", "RE")


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    yield from json_records(path, stats, lambda obj, line: [_record(obj, path, line, stats)])


def _value(value: Any, field: str, path: Path, line: int, stats: ReadStats) -> str:
    """A plain string, or the ``@value`` slot of a complex value (other slots are counted as skipped)."""
    if isinstance(value, dict):
        for slot in value:
            if slot != "@value":
                stats.skip(f"complex {field.split('.')[-1]} slot other than @value", where(path, line))
        value = value.get("@value")
    if not isinstance(value, str):
        raise RecordError("expected a string or a {'@value': string} map", path=str(path), line=line, field=field)
    return value


def _record(obj: dict, path: Path, line: int, stats: ReadStats) -> dict:
    text = need(obj, "text", str, path, line)
    relations = []
    for i, spo in enumerate(need(obj, "spo_list", list, path, line)):
        prefix = f"spo_list[{i}]."
        head = _value(need(spo, "subject", (str, dict), path, line, prefix), prefix + "subject", path, line, stats)
        tail = _value(need(spo, "object", (str, dict), path, line, prefix), prefix + "object", path, line, stats)
        head_type = _value(spo.get("subject_type", ""), prefix + "subject_type", path, line, stats)
        tail_type = _value(spo.get("object_type", ""), prefix + "object_type", path, line, stats)
        rel = need(spo, "predicate", str, path, line, prefix)
        at = where(path, line)
        relations.append(relation(text, head, rel, tail, span_or_none(text, head, None, stats, at, "subject"),
                                  span_or_none(text, tail, None, stats, at, "object"), head_type, tail_type))
    return record(text, "relation", relations, obj.get("id"))
