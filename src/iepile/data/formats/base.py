"""Shared pieces of the dataset readers: options, statistics, JSON iteration with line numbers, text from tokens,
and record builders that guarantee the offset invariant ``text[start:end] == string``.

Every reader is a generator ``read(path, opts, stats) -> Iterator[dict]`` of unified raw records. Readers never drop
anything silently: a whole record that cannot be read is *rejected* (an error by default, counted with
``on_error="skip"``), a single label that cannot be kept is *skipped* (always counted with its reason), and a label
that was kept after a repair (offset recomputed, tag sequence fixed) is *noted*.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from iepile.config import opt
from iepile.records import RecordError
from iepile.text import looks_chinese

MAX_EXAMPLES = 20
DEFAULT_NO_RELATION = ("unknown", "Other", "NA", "None", "no_relation")


@dataclass
class ReadOptions:
    """What a reader needs besides the path (``iepile import`` is built from these fields). ``task`` None means the
    format's default task; ``language`` ``auto`` decides per record (Chinese text is rebuilt without spaces)."""

    task: Optional[str] = opt(None, "Task to produce (default: the format's own; spert also NER/SPO, spo-list also "
                              "RE, event formats EE/EET/EEA).", short="-t")
    language: str = opt("auto", "en, zh or auto: how text is rebuilt from tokens (spaces for English, none for "
                        "Chinese).", short="-l")
    on_error: str = opt("fail", "fail at the first bad record, or skip and count it.")
    no_relation: list[str] = opt(help="pair-tsv/opennre labels meaning 'no relation' (comma-separated).",
                                 factory=lambda: list(DEFAULT_NO_RELATION))
    group: str = opt("global", "pair-tsv/opennre: one record per sentence over the whole file (global) or for "
                     "consecutive lines only (consecutive, streaming).")
    event_schema: Optional[str] = opt(None, "duee: event_schema.json (default: next to the input).")
    char_digit: str = opt("auto", "conll: tokens end with a word-position digit (Weibo): auto, yes or no.")
    unit: str = opt("sentence", "casie/wikievents/brat: sentence or document records.")
    annotation: str = opt("first", "label-studio: which annotation of a task: first, latest or all (merged).")
    extra: dict = opt(help="Reader-specific settings from a corpus manifest.", cli=False, factory=dict)

    CHOICES = {"language": ("auto", "en", "zh"), "on_error": ("fail", "skip"), "group": ("global", "consecutive"),
               "char_digit": ("auto", "yes", "no"), "unit": ("sentence", "document"),
               "annotation": ("first", "latest", "all")}

    def validate(self) -> None:
        """Every option with a fixed set of values has one of them (a reader never guesses what a typo meant)."""
        for name, allowed in self.CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}, "
                                 f"got {getattr(self, name)!r}")


@dataclass
class ReadStats:
    """Counts of what a reader read, kept, skipped and repaired, with the first examples of each problem."""

    path: str = "<input>"
    on_error: str = "fail"
    records: int = 0
    entities: int = 0
    relations: int = 0
    events: int = 0
    arguments: int = 0
    rejected: int = 0
    skipped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    examples: list = field(default_factory=list)
    declared_schema: Any = None

    def _example(self, kind: str, reason: str, where: str) -> None:
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{where}: {kind}: {reason}")

    def reject(self, err: RecordError) -> None:
        """A whole record is unreadable: raise (``on_error=fail``) or count it."""
        if self.on_error == "fail":
            raise err
        self.rejected += 1
        self.skipped[f"record: {err.reason}"] += 1
        self._example("rejected", f"{err.field + ': ' if err.field else ''}{err.reason}", f"{err.path}:{err.line}")

    def skip(self, reason: str, where: str, n: int = 1) -> None:
        self.skipped[reason] += n
        self._example("skipped", reason, where)

    def note(self, reason: str, where: str, n: int = 1) -> None:
        self.notes[reason] += n
        self._example("note", reason, where)

    def count(self, record: dict) -> None:
        self.records += 1
        self.entities += len(record.get("entity") or ())
        self.relations += len(record.get("relation") or ())
        for event in record.get("event") or ():
            self.events += 1
            self.arguments += len(event.get("arguments") or ())

    def labels(self) -> int:
        return self.entities + self.relations + self.events + self.arguments

    def to_dict(self) -> dict:
        return {"path": self.path, "records": self.records, "entities": self.entities, "relations": self.relations,
                "events": self.events, "arguments": self.arguments, "rejected": self.rejected,
                "skipped": dict(sorted(self.skipped.items())), "notes": dict(sorted(self.notes.items())),
                "examples": list(self.examples)}


def where(path: Path | str, line: int | str) -> str:
    return f"{path}:{line}"


# ---------------------------------------------------------------------------------------------------------------
# Input iteration


def iter_text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without CR/LF) for a UTF-8 file; a bad byte is an error naming the line."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise RecordError(f"not valid UTF-8 ({err.reason} at byte {err.start})", path=str(path), line=number)
            yield number, line.rstrip("\r\n")


_JSON_START = re.compile(r'^[\[{]\s*(["\[{]|$)')  # a lone bracket, or an object or array opening on a key/value


def refuse_json(path: Path, expected: str) -> None:
    """A JSON file given to a text-format reader would be read as tokens and tags (a type ``5905}]``): refused at its
    first line, whatever ``--on-error`` says, since no line of it is a record of that format."""
    for number, line in iter_text_lines(path):
        stripped = line.strip()
        if not stripped:
            continue
        if _JSON_START.match(stripped) or (stripped[0] in "{[" and _is_json(stripped)):
            raise RecordError(f"this is JSON, not {expected}; give the format of this file with --format",
                              path=str(path), line=number)
        return


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def json_records(path: Path, stats: "ReadStats", build) -> Iterator[dict]:
    """The records of every JSON item of a file: ``build(obj, line)`` returns the item's records; an item that raises
    :class:`RecordError` is rejected through ``stats`` (an error, or counted with ``--on-error skip``)."""
    for line, obj in iter_json_items(path, stats):
        try:
            yield from build(obj, line)
        except RecordError as err:
            stats.reject(err)


def iter_json_items(path: Path, stats: ReadStats) -> Iterator[tuple[int, Any]]:
    """(line number, value) for a JSON-lines file, each element of a JSON array file, or each value of a file of
    pretty-printed JSON objects.

    Arrays are decoded element by element with ``raw_decode`` so that errors and records still carry the line on
    which each element starts (the file is read whole: arrays cannot be streamed without a third-party parser)."""
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip()
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip()
    if head.startswith(b"["):
        yield from _iter_values(path, array=True)
        return
    if head.startswith(b"{") and head.split(b"\n", 1)[0].strip() == b"{":  # pretty-printed object(s), not JSON lines
        yield from _iter_values(path, array=False)
        return
    for number, line in iter_text_lines(path):
        if not line.strip():
            stats.note("blank line ignored", where(path, number))
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as err:
            stats.reject(RecordError(f"malformed JSON ({err.msg} at column {err.colno})", path=str(path),
                                     line=number, raw=line[:200]))


def _iter_values(path: Path, array: bool) -> Iterator[tuple[int, Any]]:
    """The elements of a JSON array, or JSON values written one after another (a pretty-printed object)."""
    text = Path(path).read_text(encoding="utf-8-sig")
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1 if array else 0
    line = 1 + text.count("\n", 0, pos)
    while True:
        match = re.compile(r"[\s,]*" if array else r"\s*").match(text, pos)
        line += text.count("\n", pos, match.end())
        pos = match.end()
        if pos >= len(text) or (array and text[pos] == "]"):
            return
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise RecordError(f"malformed JSON {'array element' if array else 'value'} ({err.msg})", path=str(path),
                              line=err.lineno) from None
        yield line, value
        line += text.count("\n", pos, end)
        pos = end


def need(obj: Any, key: str, kind: type | tuple, path: Path, line: int, prefix: str = "") -> Any:
    """``obj[key]`` of the expected type, or a RecordError naming the field."""
    if not isinstance(obj, dict) or key not in obj:
        raise RecordError(f"missing field {key!r}", path=str(path), line=line, field=prefix + key)
    value = obj[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise RecordError(f"expected {names}, got {type(value).__name__}", path=str(path), line=line,
                          field=prefix + key)
    return value


# ---------------------------------------------------------------------------------------------------------------
# Text and offsets


def join_tokens(tokens: list[str], language: str) -> tuple[str, list[int], list[int]]:
    """Text from tokens and each token's [start, end) character span: spaces between tokens for English, nothing
    for Chinese (so that offsets index the text a user would see)."""
    chinese = language == "zh" or (language == "auto" and looks_chinese(tokens))
    sep = "" if chinese else " "
    starts, ends, pos = [], [], 0
    for i, token in enumerate(tokens):
        if i and sep:
            pos += len(sep)
        starts.append(pos)
        pos += len(token)
        ends.append(pos)
    return sep.join(tokens), starts, ends


def locate(text: str, value: str, start: Optional[int] = None, end: Optional[int] = None) -> Optional[int]:
    """Start of ``value`` in ``text``: the given start when right, else the occurrence nearest to it (or the first),
    else None."""
    if not value:
        return None
    if start is not None and text.startswith(value, start) and (end is None or end - start == len(value)):
        return start
    hits = [m.start() for m in re.finditer(re.escape(value), text)]
    if not hits:
        return None
    if start is None:
        return hits[0]
    return min(hits, key=lambda h: abs(h - start))


def span_or_none(text: str, value: str, start: Optional[int], stats: ReadStats, at: str,
                 what: str) -> tuple[Optional[int], Optional[int]]:
    """Offsets for a value whose source offset may be missing or wrong; repairs are noted, misses keep no offset."""
    found = locate(text, value, start)
    if found is None:
        stats.note(f"{what} not found in text (kept without offsets)", at)
        return None, None
    if start is not None and found != start:
        stats.note(f"{what} offset corrected", at)
    return found, found + len(value)


def check_span(text: str, value: str, start: Optional[int], end: Optional[int]) -> None:
    """The invariant every writer keeps; a failure here is a bug in a reader, not in the data."""
    if start is not None and text[start:end] != value:
        raise AssertionError(f"offset invariant broken: text[{start}:{end}]={text[start:end]!r} != {value!r}")


def normalize_space(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# ---------------------------------------------------------------------------------------------------------------
# Record builders


def entity(text: str, value: str, entity_type: str, start: Optional[int], end: Optional[int]) -> dict:
    check_span(text, value, start, end)
    item = {"entity": value, "entity_type": entity_type}
    if start is not None:
        item.update(start=start, end=end)
    return item


def relation(text: str, head: str, rel: str, tail: str, head_span=(None, None), tail_span=(None, None),
             head_type: Optional[str] = None, tail_type: Optional[str] = None) -> dict:
    check_span(text, head, *head_span)
    check_span(text, tail, *tail_span)
    item: dict = {"head": head, "relation": rel, "tail": tail}
    if head_type is not None:
        item["head_type"] = head_type
    if tail_type is not None:
        item["tail_type"] = tail_type
    if head_span[0] is not None:
        item.update(head_start=head_span[0], head_end=head_span[1])
    if tail_span[0] is not None:
        item.update(tail_start=tail_span[0], tail_end=tail_span[1])
    return item


def argument(text: str, value: str, role: str, start: Optional[int], end: Optional[int]) -> dict:
    check_span(text, value, start, end)
    item = {"argument": value, "role": role}
    if start is not None:
        item.update(start=start, end=end)
    return item


def event(text: str, event_type: str, trigger: str, start: Optional[int], end: Optional[int],
          arguments: list[dict]) -> dict:
    check_span(text, trigger, start, end)
    item: dict = {"event_type": event_type, "event_trigger": trigger}
    if start is not None:
        item.update(trigger_start=start, trigger_end=end)
    item["arguments"] = arguments
    return item


def record(text: str, key: str, items: list[dict], record_id: Any = None) -> dict:
    out: dict = {"text": text, key: items}
    if record_id is not None:
        out["id"] = record_id
    return out
