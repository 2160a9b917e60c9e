"""PHEE pharmacovigilance events: ``{id, context, annotations: [{events: [{event_type, Trigger: {text, start},
<Role>: {text, start, <SubRole>: {...}}}]}]}`` where ``text``/``start`` are lists of mentions, each a list of pieces.

Nested roles are flattened to ``Parent.Child`` as the IEPile corpus does (``Treatment.Drug``, ``Subject.Age``); a
discontinuous mention (several pieces) becomes its covering span so that the offset invariant holds (counted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from iepile.data.formats.base import json_records, ReadOptions, ReadStats, argument, event, need, record, where
from iepile.records import RecordError

TASKS = ("EE", "EET", "EEA")
META_KEYS = {"event_id", "event_type", "Trigger", "text", "start", "entity_id"}


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    yield from json_records(path, stats, lambda obj, line: [_record(obj, path, line, stats)])


def _mentions(text: str, node: dict, path: Path, line: int, field: str, stats: ReadStats) -> list[tuple]:
    """(string, start, end) per mention of a role node, pieces joined into their covering span."""
    texts, starts = node.get("text") or [], node.get("start") or []
    if len(texts) != len(starts):
        raise RecordError("text and start lists differ in length", path=str(path), line=line, field=field)
    out = []
    for pieces, offsets in zip(texts, starts):
        spans = []
        for piece, start in zip(pieces, offsets):
            if text[start:start + len(piece)] != piece:
                raise RecordError(f"{piece!r} is not at offset {start}", path=str(path), line=line, field=field)
            spans.append((start, start + len(piece)))
        if not spans:
            continue
        if len(spans) > 1:
            stats.note("discontinuous mention replaced by its covering span", where(path, line))
        start, end = min(s for s, _ in spans), max(e for _, e in spans)
        out.append((text[start:end], start, end))
    return out


def _arguments(text: str, node: dict, role: str, path: Path, line: int, stats: ReadStats) -> list[dict]:
    args = [argument(text, s, role, a, b) for s, a, b in _mentions(text, node, path, line, role, stats)]
    for key, child in node.items():
        if key not in META_KEYS and isinstance(child, dict):
            args += _arguments(text, child, f"{role}.{key}", path, line, stats)
    return args


def _event(text: str, ev: dict, path: Path, line: int, stats: ReadStats) -> dict:
    triggers = _mentions(text, ev.get("Trigger") or {}, path, line, "Trigger", stats)
    if len(triggers) > 1:
        stats.note("event with several trigger mentions: the first is the trigger", where(path, line))
    trigger, start, end = triggers[0] if triggers else ("", None, None)
    arguments = []
    for key, node in ev.items():
        if key not in META_KEYS and isinstance(node, dict):
            arguments += _arguments(text, node, key, path, line, stats)
    return event(text, need(ev, "event_type", str, path, line), trigger, start, end, arguments)


def _record(obj: dict, path: Path, line: int, stats: ReadStats) -> dict:
    text = need(obj, "context", str, path, line)
    events = []
    for annotation in need(obj, "annotations", list, path, line):
        for ev in need(annotation, "events", list, path, line, "annotations[]."):
            events.append(_event(text, ev, path, line, stats))
    return record(text, "event", events, obj.get("id"))
