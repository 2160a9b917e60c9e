"""Typed raw IE records: the unified format every stage reads and writes.

One JSON object per line, exactly the reference's raw format per task (NER ``entity``, RE/SPO/KG ``relation``,
EE/EET/EEA ``event``) plus optional fields we add and preserve: ``id`` and character offsets (``start``/``end`` for
entities and arguments, ``head_start``/``head_end``/``tail_start``/``tail_end`` for relations,
``trigger_start``/``trigger_end`` for events; ``end`` is exclusive).

Lines are decoded and validated in one pass by msgspec structs, whose errors name the offending field path.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import json

import msgspec


class Entity(msgspec.Struct):
    entity: str
    entity_type: str
    start: Optional[int] = None
    end: Optional[int] = None


class Relation(msgspec.Struct):
    head: str
    relation: str
    tail: str
    head_type: Optional[str] = None
    tail_type: Optional[str] = None
    head_start: Optional[int] = None
    head_end: Optional[int] = None
    tail_start: Optional[int] = None
    tail_end: Optional[int] = None


class Argument(msgspec.Struct):
    argument: str
    role: str
    start: Optional[int] = None
    end: Optional[int] = None


class Event(msgspec.Struct):
    event_type: str
    event_trigger: str = ""
    arguments: list[Argument] = []
    trigger_start: Optional[int] = None
    trigger_end: Optional[int] = None


class NERRecord(msgspec.Struct):
    text: str
    entity: Optional[list[Entity]] = None
    id: Optional[str | int] = None


class RelationRecord(msgspec.Struct):
    text: str
    relation: Optional[list[Relation]] = None
    id: Optional[str | int] = None


class EventRecord(msgspec.Struct):
    text: str
    event: Optional[list[Event]] = None
    id: Optional[str | int] = None


AnyRecord = NERRecord | RelationRecord | EventRecord


class RecordError(ValueError):
    """A bad input line: says which file, line and field, and why."""

    def __init__(self, reason: str, *, path: str = "<input>", line: int = 0, field: str = "", raw: str = ""):
        self.reason, self.path, self.line, self.field, self.raw = reason, path, line, field, raw
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {field + ': ' if field else ''}{reason}")

    def to_reject(self) -> dict:
        return {"file": self.path, "line": self.line, "field": self.field, "reason": self.reason, "raw": self.raw}


class Line(NamedTuple):
    """One raw input line with where it came from; ``index`` is the 0-based position among the records."""

    index: int
    number: int
    data: bytes


_decoders: dict[type, msgspec.json.Decoder] = {}


def decode_record(line: Line, record_type: type, path: str) -> Any:
    """Bytes → typed record in one pass (msgspec decodes and validates together), with errors that name the file,
    line and field: empty lines, non-UTF-8 bytes, malformed JSON, non-objects, missing or mistyped fields.

    Every line is decoded on its own, never joined with its neighbours into one array: a record split over two
    lines and a line holding two records would then "cancel out" (same count) and both pass. Alone, each is an
    error of its own line (a record cut short is truncated, a second object is trailing data); one msgspec call a
    line is no slower than one call a block (measured: 120k NER records, 0.32 s vs 0.40 s)."""
    if not line.data.strip():
        raise RecordError("empty line", path=path, line=line.number)
    decoder = _decoders.get(record_type) or _decoders.setdefault(record_type, msgspec.json.Decoder(record_type))
    try:
        return decoder.decode(line.data)
    except UnicodeDecodeError as err:
        raise RecordError(f"not valid UTF-8 ({err.reason} at byte {err.start})", path=path, line=line.number,
                          raw=line.data.decode("utf-8", "replace")) from None
    except msgspec.ValidationError as err:
        message, _, field = str(err).partition(" - at `")
        if field == "" and message.startswith("Expected `object`"):
            message = message.replace("Expected `object`", "expected a JSON object")
        raise RecordError(message, path=path, line=line.number, field=field.rstrip("`"),
                          raw=line.data.decode("utf-8", "replace")) from None
    except msgspec.DecodeError as err:
        raise RecordError(f"malformed JSON ({err})", path=path, line=line.number,
                          raw=line.data.decode("utf-8", "replace")) from None


def validate(obj: dict, record_type: type, *, path: str = "<input>", line: int = 0) -> Any:
    """Check an already decoded record against its struct; the error names the field path."""
    try:
        return msgspec.convert(obj, record_type)
    except msgspec.ValidationError as err:
        message, _, field = str(err).partition(" - at `")
        raise RecordError(message, path=path, line=line, field=field.rstrip("`"), raw=dumps(obj)) from None


def find_span(text: str, value: str, start: Optional[int], end: Optional[int]) -> int:
    """Position of ``value`` in ``text``: the given offset when it is right, else the first occurrence, else -1."""
    if start is not None and (end is None or end - start == len(value)) and text.startswith(value, start):
        return start
    return text.find(value)


def dumps(obj: Any) -> str:
    """Serialise like the reference: ``json.dumps(obj, ensure_ascii=False)`` with default separators."""
    return json.dumps(obj, ensure_ascii=False)
