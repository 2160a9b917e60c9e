"""Lenient parsing of model answers: what a model wrote → one JSON object, and an honest account of how.

Models wrap their JSON in code fences or chatter, stop mid-answer at the token limit, or repeat the object. The
reference scorer ran ``json.loads`` on the raw string and lost the whole answer on any of these. Here every answer
gets a status:

* ``clean``    – the whole string (surrounding whitespace aside) is one JSON object;
* ``repaired`` – an object was recovered: fences or text around it stripped, or the JSON repaired by ``json-repair``
  (truncation, single quotes, trailing commas, a repeated object – the first one is kept);
* ``failed``   – no object could be recovered (``value`` is ``None``).

``parse_answer(text, repair=False)`` reproduces the reference exactly: only ``clean`` or ``failed``.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple, Optional

import orjson

CLEAN, REPAIRED, FAILED = "clean", "repaired", "failed"
STATUSES = (CLEAN, REPAIRED, FAILED)

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\r?\n?(.*?)(?:```|\Z)", re.S)


class ParsedAnswer(NamedTuple):
    """The parsed object (``None`` when parsing failed) and how it was obtained; ``how`` names the repair done."""

    value: Optional[dict]
    status: str
    how: str = ""


def parse_answer(text: Any, repair: bool = True) -> ParsedAnswer:
    """Parse one model answer into a JSON object; never raises. ``repair=False`` accepts exactly what the reference
    accepted (``json.loads`` of the whole string giving an object)."""
    if isinstance(text, dict):
        return ParsedAnswer(text, CLEAN)
    if not isinstance(text, str):
        return ParsedAnswer(None, FAILED, "not a string")
    value = _strict(text)
    if isinstance(value, dict):
        return ParsedAnswer(value, CLEAN)
    if not repair:
        return ParsedAnswer(None, FAILED, "not a JSON object")
    return _lenient(text)


def _strict(text: str) -> Any:
    """``json.loads`` semantics (orjson first, for speed; the standard module also takes NaN and big numbers)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _lenient(text: str) -> ParsedAnswer:
    """Try cheap exact recoveries (fence, balanced object) before handing the text to json-repair."""
    fenced = _FENCE.search(text)
    if fenced:
        inner = fenced.group(1)
        value = _strict(inner)
        if isinstance(value, dict):
            return ParsedAnswer(value, REPAIRED, "code fence")
        text = inner
    start = text.find("{")
    if start < 0:
        return ParsedAnswer(None, FAILED, "no JSON object")
    end = _balanced_end(text, start)
    if end is not None:
        value = _strict(text[start:end])
        if isinstance(value, dict):
            return ParsedAnswer(value, REPAIRED, "text around object")
    else:
        value = _strict(_close_truncated(text[start:]))
        if isinstance(value, dict):
            return ParsedAnswer(value, REPAIRED, "truncated")
    return _json_repair(text[start:])


def _close_truncated(text: str) -> str:
    """A cut-off answer cut back to its last complete value, with the open brackets closed. The incomplete last
    value is dropped rather than guessed (a half-generated span would only count as a wrong prediction). Much faster
    than json-repair, which remains the fallback for everything else."""
    stack: list[str] = []
    expect_key = False
    safe, safe_stack = 0, ""
    in_string = escaped = False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
                if not expect_key:
                    safe, safe_stack = index + 1, "".join(reversed(stack))
            continue
        if char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
            expect_key = char == "{"
            safe, safe_stack = index + 1, "".join(reversed(stack))
        elif char in "}]":
            if not stack:
                break
            stack.pop()
            expect_key = False
            safe, safe_stack = index + 1, "".join(reversed(stack))
        elif char == ",":
            expect_key = bool(stack) and stack[-1] == "}"
        elif char == ":":
            expect_key = False
    return text[:safe] + safe_stack


def _balanced_end(text: str, start: int) -> Optional[int]:
    """End (exclusive) of the ``{...}`` opening at ``start``, honouring strings; ``None`` if it never closes."""
    depth, in_string, escaped = 0, False, False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def _json_repair(text: str) -> ParsedAnswer:
    from json_repair import repair_json

    try:
        value = repair_json(text, return_objects=True)
    except Exception:  # json-repair is best effort; a crash in it is a failed parse, not a failed evaluation
        return ParsedAnswer(None, FAILED, "json-repair error")
    if isinstance(value, list):
        value = next((item for item in value if isinstance(item, dict)), None)
        if value is not None:
            return ParsedAnswer(value, REPAIRED, "repeated object")
    if isinstance(value, dict):
        return ParsedAnswer(value, REPAIRED, "json-repair")
    return ParsedAnswer(None, FAILED, "unrepairable")
