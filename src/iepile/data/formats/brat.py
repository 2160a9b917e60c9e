"""brat standoff: a ``.txt`` document and its ``.ann`` annotations; a folder (every ``.ann`` with its ``.txt``) or
one file of a pair.

``T`` text-bound annotations become entities (``NER``), or event triggers when an ``E`` line uses them; ``R``
relations (``Arg1`` → head, ``Arg2`` → tail) become relations with head/tail types (``RE``); ``E`` events become
events with their role arguments (``EE``/``EET``/``EEA``). What the record format cannot carry is counted, never
silently lost: attributes (``A``/``M``), notes (``#``), normalizations (``N``), equivalence sets (``*``), an event
given as the argument of another (its trigger is taken as the argument, noted), numbered roles (``Theme2`` →
``Theme``, noted). A discontinuous span (``0 5;10 15``) becomes its covering span (noted), as in the other readers;
every span's text column is checked against the document (fragments joined by one space).

``--unit sentence`` (the default) writes one record per sentence of the document and skips (counted) annotations
that cross a sentence boundary; ``--unit document`` one record per document.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Optional

from iepile.data.formats.base import ReadOptions, ReadStats, argument, entity, event, record, relation, where
from iepile.records import RecordError
from iepile.text import sentence_spans, tile

TASKS = ("NER", "RE", "EE", "EET", "EEA")
DROPPED = {"A": "attribute", "M": "attribute", "#": "note", "N": "normalization", "*": "equivalence set"}
NUMBERED_ROLE = re.compile(r"^(.*?[A-Za-z_-])\d+$")


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    for ann in _annotation_files(path):
        txt = ann.with_suffix(".txt")
        if not txt.exists():
            raise RecordError(f"no {txt.name} next to {ann.name}", path=str(ann))
        text = txt.read_text(encoding="utf-8")
        try:
            doc = _parse(ann, text, stats)
        except RecordError as err:
            stats.reject(err)
            continue
        for rid, start, end in _units(ann.stem, text, opts.unit):
            yield _record(doc, text, start, end, rid, opts.task, ann, stats)


def _annotation_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.ann"))
        if not files:
            raise RecordError("no .ann files in this folder", path=str(path))
        return files
    if path.suffix not in (".ann", ".txt"):
        kind = f"a {path.suffix} file" if path.suffix else "a file without a suffix"
        raise RecordError(f"brat reads a folder of .ann/.txt pairs or one file of a pair, not {kind}; give the "
                          "format of this file with --format", path=str(path))
    return [path.with_suffix(".ann")]


class _Doc:
    def __init__(self):
        self.spans: dict[str, tuple[str, int, int, int]] = {}     # T id → (type, start, end, line)
        self.relations: list[tuple[str, str, str, int]] = []       # (type, head T, tail T, line)
        self.events: dict[str, tuple[str, str, list, int]] = {}    # E id → (type, trigger T, [(role, id)], line)


def _parse(ann: Path, text: str, stats: ReadStats) -> _Doc:
    doc = _Doc()
    with open(ann, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            kind = line[0]
            if kind in DROPPED:
                stats.skip(f"brat {DROPPED[kind]} ({kind} line) not carried by the record format", where(ann, number))
                continue
            fields = line.split("\t")
            if kind == "T":
                doc.spans[fields[0]] = _span(fields, text, ann, number, stats)
            elif kind == "R":
                rel_type, *args = fields[1].split() if len(fields) > 1 else ("",)
                roles = dict(arg.split(":", 1) for arg in args if ":" in arg)
                if not rel_type or "Arg1" not in roles or "Arg2" not in roles:
                    raise RecordError("a relation needs a type, Arg1 and Arg2", path=str(ann), line=number)
                doc.relations.append((rel_type, roles["Arg1"], roles["Arg2"], number))
            elif kind == "E":
                parts = fields[1].split() if len(fields) > 1 else []
                if not parts or ":" not in parts[0]:
                    raise RecordError("an event needs Type:Trigger", path=str(ann), line=number)
                event_type, trigger = parts[0].split(":", 1)
                doc.events[fields[0]] = (event_type, trigger, [tuple(a.split(":", 1)) for a in parts[1:] if ":" in a],
                                         number)
            else:
                raise RecordError(f"unknown brat annotation {fields[0]!r}", path=str(ann), line=number)
    return doc


def _span(fields: list[str], text: str, ann: Path, number: int, stats: ReadStats) -> tuple[str, int, int, int]:
    if len(fields) < 3:
        raise RecordError("a text-bound annotation needs ID, Type start end and its text", path=str(ann), line=number)
    kind, _, offsets = fields[1].partition(" ")
    try:
        fragments = [tuple(int(x) for x in part.split()) for part in offsets.split(";")]
    except ValueError:
        raise RecordError(f"offsets {offsets!r} are not numbers", path=str(ann), line=number) from None
    if not kind or any(len(f) != 2 or not 0 <= f[0] <= f[1] <= len(text) for f in fragments):
        raise RecordError(f"offsets {offsets!r} outside the {len(text)}-character text", path=str(ann), line=number)
    expected = " ".join(text[a:b] for a, b in fragments)
    if expected != fields[2]:
        raise RecordError(f"text {fields[2]!r} is not the document's {expected!r} at {offsets}", path=str(ann),
                          line=number, field="text")
    if len(fragments) > 1:
        stats.note("discontinuous span replaced by its covering span", where(ann, number))
    return kind, fragments[0][0], fragments[-1][1], number


def _units(stem: str, text: str, unit: str) -> list[tuple[str, int, int]]:
    if unit == "document":
        return [(stem, 0, len(text))]
    units = [(s, e) for s, e in tile(sentence_spans(text), len(text)) if text[s:e].strip()]
    return [(f"{stem}#{i}", s, e) for i, (s, e) in enumerate(units)]


def _record(doc: _Doc, text: str, start: int, end: int, rid: str, task: str, ann: Path, stats: ReadStats) -> dict:
    unit = text[start:end]

    def inside(span_id: str, number: int) -> Optional[tuple[str, int, int]]:
        if span_id not in doc.spans:
            raise RecordError(f"{span_id} is not a text-bound annotation of this file", path=str(ann), line=number)
        kind, a, b, _ = doc.spans[span_id]
        return (kind, a - start, b - start) if start <= a and b <= end else None

    if task == "NER":
        triggers = {trigger for _, trigger, _, _ in doc.events.values()}
        items = []
        for span_id, (kind, a, b, number) in doc.spans.items():
            if span_id in triggers or not start <= a < end:
                continue
            if b > end:
                stats.skip("entity crosses a sentence boundary", where(ann, number))
                continue
            items.append(entity(unit, unit[a - start:b - start], kind, a - start, b - start))
        return record(unit, "entity", items, rid)
    if task == "RE":
        items = []
        for rel_type, head, tail, number in doc.relations:
            h, t = inside(head, number), inside(tail, number)
            if h is None and t is None:
                continue
            if h is None or t is None:
                if _starts_in(doc, head, start, end) or _starts_in(doc, tail, start, end):
                    stats.skip("relation crosses a sentence boundary", where(ann, number))
                continue
            items.append(relation(unit, unit[h[1]:h[2]], rel_type, unit[t[1]:t[2]], h[1:], t[1:], h[0], t[0]))
        return record(unit, "relation", items, rid)
    items = []
    for event_type, trigger, args, number in doc.events.values():
        found = inside(trigger, number)
        if found is None:
            continue
        _, a, b = found
        arguments = []
        for role, target in args:
            match = NUMBERED_ROLE.match(role)
            if match:
                stats.note("numbered role (Theme2) written as its role (Theme)", where(ann, number))
                role = match.group(1)
            if target.startswith("E"):
                if target not in doc.events:
                    raise RecordError(f"{target} is not an event of this file", path=str(ann), line=number)
                stats.note("event as an argument: its trigger is the argument", where(ann, number))
                target = doc.events[target][1]
            span = inside(target, number)
            if span is None:
                stats.skip("argument outside the trigger's sentence", where(ann, number))
                continue
            arguments.append(argument(unit, unit[span[1]:span[2]], role, span[1], span[2]))
        items.append(event(unit, event_type, unit[a:b], a, b, arguments))
    return record(unit, "event", items, rid)


def _starts_in(doc: _Doc, span_id: str, start: int, end: int) -> bool:
    return span_id in doc.spans and start <= doc.spans[span_id][1] < end


# -- writing: records → .txt/.ann pairs (pre-annotations, round trips) -----------------------------------------------

def write(records: list[dict], task: str, folder: Path) -> int:
    """One ``NNNN.txt`` / ``NNNN.ann`` pair per record in ``folder`` (which must be new or empty): entities as ``T``,
    relations as ``R`` between ``T`` spans, events as ``E`` lines on a trigger ``T`` typed by the event type with
    argument ``T`` spans typed by their role (a repeated role numbered, ``Theme2``); an item flagged ``ambiguous`` gets an ``AnnotatorNotes`` line. Written
    into a temporary folder renamed at the end. Returns the number of documents."""
    import os
    import shutil
    import tempfile

    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise ValueError(f"{folder}: not empty; brat output goes to a new or empty folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for number, rec in enumerate(records):
            stem = tmp / f"{number:04d}"
            stem.with_suffix(".txt").write_text(rec["text"], encoding="utf-8")
            stem.with_suffix(".ann").write_text("".join(_ann_lines(rec, task)), encoding="utf-8")
        if folder.exists():
            folder.rmdir()
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return len(records)


def _ann_lines(rec: dict, task: str) -> list[str]:
    text, lines, spans = rec["text"], [], {}

    def span(start: int, end: int, label: str, ambiguous: bool) -> str:
        key = (start, end, label)
        if key not in spans:
            spans[key] = f"T{len(spans) + 1}"
            lines.append(f"{spans[key]}\t{label} {start} {end}\t{text[start:end]}\n")
            if ambiguous:
                lines.append(f"#{len(spans)}\tAnnotatorNotes {spans[key]}\tambiguous: the extracted string occurs "
                             "more than once\n")
        return spans[key]

    for e in rec.get("entity") or []:
        span(e["start"], e["end"], e["entity_type"], bool(e.get("ambiguous")))
    for number, rel in enumerate(rec.get("relation") or [], start=1):
        head, tail = (span(rel[f"{side}_start"], rel[f"{side}_end"], rel.get(f"{side}_type") or "Entity",
                           bool(rel.get("ambiguous"))) for side in ("head", "tail"))
        lines.append(f"R{number}\t{rel['relation']} Arg1:{head} Arg2:{tail}\t\n")
    for number, ev in enumerate(rec.get("event") or [], start=1):
        ambiguous = bool(ev.get("ambiguous"))
        trigger = span(ev["trigger_start"], ev["trigger_end"], ev["event_type"], ambiguous)
        roles: dict[str, int] = {}
        args = []
        for arg in ev.get("arguments") or []:
            roles[arg["role"]] = roles.get(arg["role"], 0) + 1
            suffix = str(roles[arg["role"]]) if roles[arg["role"]] > 1 else ""  # brat numbers a repeated role
            args.append(f" {arg['role']}{suffix}:{span(arg['start'], arg['end'], arg['role'], ambiguous)}")
        lines.append(f"E{number}\t{ev['event_type']}:{trigger}{''.join(args)}\n")
    return lines
