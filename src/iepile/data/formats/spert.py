"""SpERT-style JSON (CoNLL-2004, SciERC, ADE): ``[{tokens, entities: [{type, start, end}], relations: [{type, head,
tail}]}]`` with token offsets (``end`` exclusive) and relations indexing ``entities``.

Produces RE records (relations with head/tail types and character offsets), SPO records (the same, whose schema is
``headtype_relation_tailtype``), or NER records on request (``--task NER``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from iepile.data.formats.base import (json_records, ReadOptions, ReadStats, entity, join_tokens, need, record,
                                 relation, where)
from iepile.records import RecordError

TASKS = ("RE", "NER", "SPO")


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    yield from json_records(path, stats, lambda obj, line: [_record(obj, path, line, opts, stats)])


def _entities(obj: dict, n_tokens: int, path: Path, line: int) -> list[tuple[str, int, int]]:
    out = []
    for i, ent in enumerate(need(obj, "entities", list, path, line)):
        kind = need(ent, "type", str, path, line, f"entities[{i}].")
        start = need(ent, "start", int, path, line, f"entities[{i}].")
        end = need(ent, "end", int, path, line, f"entities[{i}].")
        if not 0 <= start < end <= n_tokens:
            raise RecordError(f"token span [{start}, {end}) outside the {n_tokens} tokens", path=str(path),
                              line=line, field=f"entities[{i}]")
        out.append((kind, start, end))
    return out


def _record(obj: dict, path: Path, line: int, opts: ReadOptions, stats: ReadStats) -> dict:
    tokens = need(obj, "tokens", list, path, line)
    if not all(isinstance(t, str) for t in tokens):
        raise RecordError("tokens must be strings", path=str(path), line=line, field="tokens")
    text, starts, ends = join_tokens(tokens, opts.language)
    spans = [(kind, starts[s], ends[e - 1]) for kind, s, e in _entities(obj, len(tokens), path, line)]
    rid = obj.get("orig_id", obj.get("id"))
    if opts.task == "NER":
        return record(text, "entity", [entity(text, text[s:e], kind, s, e) for kind, s, e in spans], rid)
    relations = []
    for i, rel in enumerate(need(obj, "relations", list, path, line)):
        kind = need(rel, "type", str, path, line, f"relations[{i}].")
        head, tail = (need(rel, key, int, path, line, f"relations[{i}].") for key in ("head", "tail"))
        if not (0 <= head < len(spans) and 0 <= tail < len(spans)):
            stats.skip("relation refers to a missing entity", where(path, line))
            continue
        (ht, hs, he), (tt, ts, te) = spans[head], spans[tail]
        relations.append(relation(text, text[hs:he], kind, text[ts:te], (hs, he), (ts, te), ht, tt))
    return record(text, "relation", relations, rid)
