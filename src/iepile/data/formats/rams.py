"""RAMS documents (JSON lines): ``{doc_key, sentences: [[tokens]], evt_triggers: [[start, end, [[type, p]]]],
gold_evt_links: [[[ts, te], [as, ae], "evt089arg01victim"]]}`` with inclusive token offsets over the whole document.

One record per document (RAMS documents are five-sentence windows around one trigger); the text joins the tokens with
spaces and the role is the link label without its ``evtNNNargNN`` prefix (``victim``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from iepile.data.formats.base import (json_records, ReadOptions, ReadStats, argument, event, join_tokens, need,
                                 record, where)
from iepile.records import RecordError

TASKS = ("EE", "EET", "EEA")
_ROLE_PREFIX = re.compile(r"^evt\d+arg\d+")


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    yield from json_records(path, stats, lambda obj, line: [_record(obj, path, line, opts, stats)])


def _span(span, n: int, path: Path, line: int, field: str) -> tuple[int, int]:
    if not (isinstance(span, list) and len(span) >= 2 and all(isinstance(x, int) for x in span[:2])
            and 0 <= span[0] <= span[1] < n):
        raise RecordError(f"expected an inclusive token span inside the {n} tokens", path=str(path), line=line,
                          field=field)
    return span[0], span[1]


def _record(obj: dict, path: Path, line: int, opts: ReadOptions, stats: ReadStats) -> dict:
    tokens = [tok for sentence in need(obj, "sentences", list, path, line) for tok in sentence]
    text, starts, ends = join_tokens(tokens, opts.language)
    chars = lambda s, e: (starts[s], ends[e])  # noqa: E731
    events: dict[tuple[int, int], dict] = {}
    for i, trig in enumerate(need(obj, "evt_triggers", list, path, line)):
        s, e = _span(trig, len(tokens), path, line, f"evt_triggers[{i}]")
        kind = trig[2][0][0] if len(trig) > 2 and trig[2] else ""
        a, b = chars(s, e)
        events[(s, e)] = event(text, kind, text[a:b], a, b, [])
    for i, link in enumerate(obj.get("gold_evt_links") or []):
        trig = _span(link[0], len(tokens), path, line, f"gold_evt_links[{i}][0]")
        s, e = _span(link[1], len(tokens), path, line, f"gold_evt_links[{i}][1]")
        if trig not in events:
            stats.skip("argument link to an unknown trigger", where(path, line))
            continue
        a, b = chars(s, e)
        events[trig]["arguments"].append(argument(text, text[a:b], _ROLE_PREFIX.sub("", str(link[2])), a, b))
    return record(text, "event", list(events.values()), obj.get("doc_key"))
