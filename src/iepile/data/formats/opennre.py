"""OpenNRE JSON lines: ``{token | text, h: {name, pos}, t: {name, pos}, relation}``, one entity pair per line.

With ``token`` the positions are token indices (end exclusive) and the text is rebuilt from the tokens; with
``text`` they are character offsets. Pairs are grouped into one record per sentence as in ``pair-tsv`` (no-relation
labels such as ``NA`` give negative records).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from iepile.data.formats.base import ReadOptions, ReadStats, iter_json_items, join_tokens, need, where
from iepile.data.formats.pair_tsv import group_pairs
from iepile.records import RecordError

TASKS = ("RE",)


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    yield from group_pairs(_pairs(path, opts, stats), opts, stats)


def _pairs(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[tuple[str, str, Optional[tuple]]]:
    for line, obj in iter_json_items(path, stats):
        try:
            yield where(path, line), *_pair(obj, path, line, opts)
        except RecordError as err:
            stats.reject(err)


def _pos(obj: dict, key: str, path: Path, line: int) -> tuple[int, int]:
    ent = need(obj, key, dict, path, line)
    pos = need(ent, "pos", list, path, line, f"{key}.")
    if len(pos) != 2 or not all(isinstance(x, int) for x in pos) or pos[0] >= pos[1]:
        raise RecordError("pos must be [start, end) integers", path=str(path), line=line, field=f"{key}.pos")
    return pos[0], pos[1]


def _pair(obj: dict, path: Path, line: int, opts: ReadOptions) -> tuple[str, tuple]:
    rel = need(obj, "relation", str, path, line)
    (h0, h1), (t0, t1) = _pos(obj, "h", path, line), _pos(obj, "t", path, line)
    if "token" in obj:
        tokens = need(obj, "token", list, path, line)
        if max(h1, t1) > len(tokens):
            raise RecordError("entity position beyond the tokens", path=str(path), line=line)
        text, starts, ends = join_tokens(tokens, opts.language)
        h0, h1, t0, t1 = starts[h0], ends[h1 - 1], starts[t0], ends[t1 - 1]
    else:
        text = need(obj, "text", str, path, line)
        if max(h1, t1) > len(text):
            raise RecordError("entity position beyond the text", path=str(path), line=line)
    return text, (text[h0:h1], rel, text[t0:t1], h0, t0)
