"""DuEE 1.0 / DuEE-fin JSON lines: ``{text, id, event_list: [{event_type, trigger, trigger_start_index, arguments:
[{role, argument, argument_start_index}]}]}`` and its ``event_schema.json`` (one line per event type with
``role_list``), which is read as the declared schema so that types and roles keep the dataset's own order.

Source offsets are checked against the text and corrected (counted) when they are wrong. Lines without
``event_list`` (the hidden test set) become records without annotations.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Optional

from iepile.data.formats.base import (json_records, ReadOptions, ReadStats, argument, event, iter_text_lines, need,
                                 span_or_none, where)
from iepile.records import RecordError
from iepile.schema import Schema

TASKS = ("EE", "EET", "EEA")


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    stats.declared_schema = _load_event_schema(path, opts.event_schema)
    yield from json_records(path, stats, lambda obj, line: [_record(obj, path, line, stats)])


def _load_event_schema(path: Path, explicit: Optional[str]) -> Optional[Schema]:
    schema_path = Path(explicit) if explicit else path.with_name("event_schema.json")
    if not schema_path.exists():
        if explicit:
            raise FileNotFoundError(f"{schema_path}: event schema not found")
        return None
    type_roles: dict[str, list[str]] = {}
    for number, line in iter_text_lines(schema_path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            type_roles[obj["event_type"]] = [r["role"] for r in obj["role_list"]]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise RecordError(f"bad event schema line ({err})", path=str(schema_path), line=number) from None
    roles = [r for rs in type_roles.values() for r in rs]
    return Schema(list(type_roles), roles, type_roles)


def _record(obj: dict, path: Path, line: int, stats: ReadStats) -> dict:
    text = need(obj, "text", str, path, line)
    out: dict = {"text": text}
    if "event_list" not in obj:
        stats.note("record without event_list (unlabelled)", where(path, line))
    else:
        out["event"] = [_event(text, ev, path, line, f"event_list[{i}].", stats)
                        for i, ev in enumerate(need(obj, "event_list", list, path, line))]
    if "id" in obj:
        out["id"] = obj["id"]
    return out


def _event(text: str, ev: dict, path: Path, line: int, prefix: str, stats: ReadStats) -> dict:
    at = where(path, line)
    trigger = need(ev, "trigger", str, path, line, prefix)
    t_start, t_end = span_or_none(text, trigger, ev.get("trigger_start_index"), stats, at, "trigger")
    arguments = []
    for j, arg in enumerate(need(ev, "arguments", list, path, line, prefix)):
        value = need(arg, "argument", str, path, line, f"{prefix}arguments[{j}].")
        role = need(arg, "role", str, path, line, f"{prefix}arguments[{j}].")
        if not value:
            stats.skip("empty argument", at)
            continue
        start, end = span_or_none(text, value, arg.get("argument_start_index"), stats, at, "argument")
        arguments.append(argument(text, value, role, start, end))
    return event(text, need(ev, "event_type", str, path, line, prefix), trigger, t_start, t_end, arguments)
