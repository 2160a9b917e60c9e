"""FewFC JSON lines: ``{id, content, events: [{type, mentions: [{word, span: [start, end], role}]}]}`` where the
mention with role ``trigger`` is the trigger and every other mention an argument (``end`` exclusive)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from iepile.data.formats.base import (json_records, ReadOptions, ReadStats, argument, event, need, record,
                                 span_or_none, where)

TASKS = ("EE", "EET", "EEA")


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    yield from json_records(path, stats, lambda obj, line: [_record(obj, path, line, stats)])


def _record(obj: dict, path: Path, line: int, stats: ReadStats) -> dict:
    text = need(obj, "content", str, path, line)
    events = []
    for i, ev in enumerate(need(obj, "events", list, path, line)):
        prefix = f"events[{i}]."
        trigger, t_span, arguments = "", (None, None), []
        for j, mention in enumerate(need(ev, "mentions", list, path, line, prefix)):
            mprefix = f"{prefix}mentions[{j}]."
            word = need(mention, "word", str, path, line, mprefix)
            role = need(mention, "role", str, path, line, mprefix)
            span = mention.get("span") or [None, None]
            start, end = span_or_none(text, word, span[0], stats, where(path, line), role)
            if role == "trigger":
                trigger, t_span = word, (start, end)
            else:
                arguments.append(argument(text, word, role, start, end))
        if not trigger:
            stats.note("event without a trigger mention", where(path, line))
        events.append(event(text, need(ev, "type", str, path, line, prefix), trigger, *t_span, arguments))
    return record(text, "event", events, obj.get("id"))
