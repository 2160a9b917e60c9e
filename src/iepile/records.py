"""Typed raw IE records: the unified format every stage reads and writes.

One JSON object per line, exactly the reference's raw format per task (NER ``entity``, RE/SPO/KG ``relation``,
EE/EET/EEA ``event``) plus optional fields we add and preserve: ``id`` and character offsets (``start``/``end`` for
entities and arguments, ``head_start``/``head_end``/``tail_start``/``tail_end`` for relations,
``trigger_start``/``trigger_end`` for events; ``end`` is exclusive).

Lines are decoded with orjson into plain dicts (so the raw annotation keeps its key order for the test ``label``) and
validated with msgspec structs, whose errors name the offending field path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional

import json

import msgspec
import orjson


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


@dataclass(frozen=True)
class Line:
    """One raw input line with where it came from; ``index`` is the 0-based position among the records."""

    index: int
    number: int
    data: bytes


def iter_lines(stream, path: str) -> Iterator[Line]:
    """Yield every line of a binary stream except a single trailing empty one; blank lines are kept (and rejected
    later) so that nothing is silently skipped."""
    index = 0
    for number, data in enumerate(stream, start=1):
        data = data.rstrip(b"\r\n")
        yield Line(index, number, data)
        index += 1


def decode_line(line: Line, path: str) -> dict:
    """Bytes → dict, with clear errors for empty lines, non-UTF-8 bytes, malformed JSON and non-object lines."""
    if not line.data.strip():
        raise RecordError("empty line", path=path, line=line.number)
    try:
        line.data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RecordError(f"not valid UTF-8 ({err.reason} at byte {err.start})", path=path, line=line.number,
                          raw=line.data.decode("utf-8", "replace"))
    try:
        obj = orjson.loads(line.data)
    except orjson.JSONDecodeError as err:
        raise RecordError(f"malformed JSON ({err})", path=path, line=line.number, raw=line.data.decode())
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}", path=path, line=line.number,
                          raw=line.data.decode())
    return obj


def validate(obj: dict, record_type: type, *, path: str = "<input>", line: int = 0) -> Any:
    """Check a decoded line against its record struct; the error names the field path (``$.entity[0].entity``)."""
    try:
        return msgspec.convert(obj, record_type)
    except msgspec.ValidationError as err:
        message = str(err)
        field = ""
        if " - at `" in message:
            message, _, field = message.partition(" - at `")
            field = field.rstrip("`")
        raise RecordError(message, path=path, line=line, field=field, raw=orjson.dumps(obj).decode())


def find_span(text: str, value: str, start: Optional[int], end: Optional[int]) -> int:
    """Position of ``value`` in ``text``: the given offset when it is right, else the first occurrence, else -1."""
    if start is not None and (end is None or end - start == len(value)) and text.startswith(value, start):
        return start
    return text.find(value)


def dumps(obj: Any) -> str:
    """Serialise like the reference: ``json.dumps(obj, ensure_ascii=False)`` with default separators."""
    return json.dumps(obj, ensure_ascii=False)
