"""CASIE cybersecurity event documents: ``{content, cyberevent: {hopper: [{events: [{type, subtype, nugget: {text,
startOffset, endOffset}, argument: [{text, startOffset, endOffset, role: {type}}]}]}]}}``.

Documents are split into sentences (``unit="sentence"``, default) and each event goes to the sentence holding its
trigger; arguments outside that sentence, and triggers crossing a sentence break, are counted as skipped. The event
type is the subtype (``Databreach``, ``Phishing`` ...) unless ``extra["casie_type"]`` is ``type`` or ``both``
(``Attack.Phishing``). Sentences without events are kept as negative records unless ``extra["keep_empty"]`` is false.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from iepile.data.formats.base import (json_records, ReadOptions, ReadStats, argument, event, need, record,
                                 span_or_none, where)
from iepile.text import sentence_spans

TASKS = ("EE", "EET", "EEA")


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    yield from json_records(path, stats, lambda obj, line: _records(obj, path, line, opts, stats))


def _span(content: str, node: dict, stats: ReadStats, at: str) -> tuple[str, Optional[int], Optional[int]]:
    """(text, start, end) of a nugget or argument, with offsets checked against the content."""
    text = node.get("text") or ""
    start = node.get("startOffset")
    start, end = span_or_none(content, text, start, stats, at, "mention") if text else (None, None)
    return text, start, end


def _event_type(ev: dict, mode: str) -> str:
    kind, sub = ev.get("type", ""), ev.get("subtype", "")
    if mode == "type":
        return kind
    if mode == "both":
        return f"{kind}.{sub}" if kind and sub else kind or sub
    return sub or kind


def _events(obj: dict, path: Path, line: int, opts: ReadOptions, stats: ReadStats) -> list[tuple]:
    """(type, trigger, start, end, [(role, text, start, end)]) in document offsets."""
    content = obj["content"]
    at = where(path, line)
    hoppers = (need(obj, "cyberevent", dict, path, line).get("hopper")) or []
    out = []
    for hopper in hoppers:
        for ev in hopper.get("events") or []:
            trigger, t0, t1 = _span(content, ev.get("nugget") or {}, stats, at)
            if t0 is None:
                stats.skip("event whose trigger is not in the text", at)
                continue
            args = []
            for arg in ev.get("argument") or []:
                role = arg.get("role")
                role = role.get("type") if isinstance(role, dict) else role
                value, a0, a1 = _span(content, arg, stats, at)
                if not value or not role:
                    stats.skip("argument without text or role", at)
                    continue
                args.append((role, value, a0, a1))
            out.append((_event_type(ev, opts.extra.get("casie_type", "subtype")), trigger, t0, t1, args))
    return out


def _records(obj: dict, path: Path, line: int, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    content = need(obj, "content", str, path, line)
    events = _events(obj, path, line, opts, stats)
    spans = [(0, len(content))] if opts.unit == "document" else sentence_spans(content)
    at = where(path, line)
    placed = 0
    for s, e in spans:
        text = content[s:e]
        mine = [ev for ev in events if s <= ev[2] < e]
        items = []
        for kind, trigger, t0, t1, args in mine:
            placed += 1
            if t1 > e:
                stats.skip("trigger crosses a sentence break", at)
                continue
            kept = []
            for role, value, a0, a1 in args:
                if a0 is None or s <= a0 and a1 <= e:
                    a0, a1 = (None, None) if a0 is None else (a0 - s, a1 - s)
                    kept.append(argument(text, value, role, a0, a1))
                else:
                    stats.skip("argument outside the trigger's sentence", at)
            items.append(event(text, kind, trigger, t0 - s, t1 - s, kept))
        if items or opts.extra.get("keep_empty", True):
            yield record(text, "event", items)
    if placed < len(events):
        stats.skip("event outside every sentence", at, len(events) - placed)
