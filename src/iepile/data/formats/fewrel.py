"""FewRel 1.0 (``train_wiki.json``, ``val_wiki.json``): one JSON object ``{Pxx: [{tokens, h: [name, qid, [[token
indices]]], t: [...]}]}`` mapping a Wikidata property id to its sentences, each labelled with one head-tail pair.

Relation names come from ``pid2name.json`` (``{Pxx: [name, description]}``) next to the input, or from the file
named by ``read: {extra: {relation_names: ...}}``: a zero-shot model is asked for ``spouse`` or ``part of``, never
for ``P26``. Without that file the ids are kept and the reader says so. Entity types are not annotated.

FewRel labels one pair per sentence: another true relation of the same sentence counts as a false positive for any
system, as in IEPile's own FewRel evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Optional

from iepile.data.formats.base import ReadOptions, ReadStats, join_tokens, record, relation
from iepile.records import RecordError

TASKS = ("RE",)


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise RecordError(f"malformed JSON ({err.msg})", path=str(path), line=err.lineno) from None
    if not isinstance(data, dict):
        raise RecordError("expected one JSON object mapping relation ids to sentence lists", path=str(path), line=1)
    names = _relation_names(path, opts.extra.get("relation_names"), stats)
    for pid, instances in data.items():
        if not isinstance(instances, list):
            stats.reject(RecordError("expected a list of sentences", path=str(path), line=1, field=pid))
            continue
        for i, obj in enumerate(instances):
            try:
                yield _record(obj, names.get(pid, pid), path, f"{pid}[{i}]", opts)
            except RecordError as err:
                stats.reject(err)


def _relation_names(path: Path, explicit: Optional[str], stats: ReadStats) -> dict[str, str]:
    names_path = Path(explicit) if explicit else Path(path).with_name("pid2name.json")
    if not names_path.is_file():
        if explicit:
            raise RecordError("relation names file not found", path=str(names_path), line=0)
        stats.note("no pid2name.json next to the input: relations keep their Wikidata ids", str(path))
        return {}
    table = json.loads(names_path.read_text(encoding="utf-8"))
    return {pid: value[0] if isinstance(value, list) else str(value) for pid, value in table.items()}


def _mention(obj: dict, key: str, n_tokens: int, path: Path, field: str) -> tuple[int, int]:
    """The first mention of ``h`` or ``t`` as a token range [first, last + 1)."""
    value = obj.get(key)
    try:
        indices = value[2][0]
        first, last = min(indices), max(indices)
    except (TypeError, IndexError, ValueError):
        raise RecordError("expected [name, id, [[token indices]]]", path=str(path), line=1,
                          field=f"{field}.{key}") from None
    if not (isinstance(first, int) and isinstance(last, int) and 0 <= first <= last < n_tokens):
        raise RecordError(f"token indices outside the {n_tokens} tokens", path=str(path), line=1,
                          field=f"{field}.{key}")
    return first, last + 1


def _record(obj: dict, name: str, path: Path, field: str, opts: ReadOptions) -> dict:
    tokens = obj.get("tokens") if isinstance(obj, dict) else None
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
        raise RecordError("expected a non-empty list of token strings", path=str(path), line=1, field=f"{field}.tokens")
    text, starts, ends = join_tokens(tokens, opts.language)
    (hs, he), (ts, te) = (_mention(obj, key, len(tokens), path, field) for key in ("h", "t"))
    head, tail = (starts[hs], ends[he - 1]), (starts[ts], ends[te - 1])
    item = relation(text, text[head[0]:head[1]], name, text[tail[0]:tail[1]], head, tail)
    return record(text, "relation", [item], field)
