"""WikiEvents documents (JSON lines): ``{doc_id, tokens, sentences: [[[token, start, end], ...], text], ...],
entity_mentions: [{id, start, end, text}], event_mentions: [{event_type, trigger: {start, end, text, sent_idx},
arguments: [{entity_id, role, text}]}]}`` with token offsets (``end`` exclusive) over the document.

Records are sentences (default; arguments outside the trigger's sentence are counted as skipped) or whole documents
(``unit="document"``). Text is rebuilt from the tokens with spaces, so offsets are exact by construction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from iepile.data.formats.base import (json_records, ReadOptions, ReadStats, argument, event, join_tokens, need,
                                 record, where)
from iepile.records import RecordError

TASKS = ("EE", "EET", "EEA")


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    yield from json_records(path, stats, lambda obj, line: _records(obj, path, line, opts, stats))


def _sentence_ranges(obj: dict, n_tokens: int, path: Path, line: int) -> list[tuple[int, int]]:
    """Token ranges of the sentences, from the length of each sentence's token list."""
    ranges, pos = [], 0
    for sentence in obj.get("sentences") or []:
        size = len(sentence[0]) if sentence and isinstance(sentence[0], list) else len(sentence)
        ranges.append((pos, pos + size))
        pos += size
    if pos != n_tokens:
        raise RecordError(f"sentences hold {pos} tokens, the document {n_tokens}", path=str(path), line=line,
                          field="sentences")
    return ranges or [(0, n_tokens)]


def _token_span(node: dict, n: int, path: Path, line: int, field: str) -> tuple[int, int]:
    start, end = node.get("start"), node.get("end")
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= n):
        raise RecordError("expected token offsets start < end inside the document", path=str(path), line=line,
                          field=field)
    return start, end


def _records(obj: dict, path: Path, line: int, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    tokens = need(obj, "tokens", list, path, line)
    ranges = [(0, len(tokens))] if opts.unit == "document" else _sentence_ranges(obj, len(tokens), path, line)
    mentions = {m.get("id"): _token_span(m, len(tokens), path, line, f"entity_mentions[{i}]")
                for i, m in enumerate(obj.get("entity_mentions") or [])}
    at = where(path, line)
    events = obj.get("event_mentions") or []
    for number, (first, last) in enumerate(ranges):
        text, starts, ends = join_tokens(tokens[first:last], opts.language)
        items = []
        for i, ev in enumerate(events):
            ts, te = _token_span(ev.get("trigger") or {}, len(tokens), path, line, f"event_mentions[{i}].trigger")
            if not first <= ts < last:
                continue
            if te > last:
                stats.skip("trigger crosses a sentence break", at)
                continue
            args = []
            for arg in ev.get("arguments") or []:
                span = mentions.get(arg.get("entity_id"))
                if span is None:
                    stats.skip("argument refers to an unknown entity mention", at)
                elif not (first <= span[0] and span[1] <= last):
                    stats.skip("argument outside the trigger's sentence", at)
                else:
                    a, b = starts[span[0] - first], ends[span[1] - 1 - first]
                    args.append(argument(text, text[a:b], need(arg, "role", str, path, line), a, b))
            a, b = starts[ts - first], ends[te - 1 - first]
            items.append(event(text, need(ev, "event_type", str, path, line), text[a:b], a, b, args))
        rid = obj.get("doc_id") if opts.unit == "document" else f"{obj.get('doc_id')}#{number}"
        yield record(text, "event", items, rid)
