"""Task sentences and the byte-exact instruction string of the IEPile corpus: built (:func:`build_instruction`,
and pre-escaped pieces for the converter's fast path), parsed strictly (:func:`parse_instruction`) or leniently
(:func:`read_instruction`), and rebuilt around a shorter input (:func:`input_and_rebuilder`) — in this one module.

The instruction is ``json.dumps({"instruction": sentence, "schema": items, "input": text}, ensure_ascii=False)`` with
default separators and exactly this key order: models trained on the released corpus read exactly these bytes.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional

import orjson

def _task_sentences() -> dict[str, dict[str, str]]:
    from iepile.tasks import TASKS

    return {name: dict(task.sentences) for name, task in TASKS.items()}


SENTENCES: dict[str, dict[str, str]] = _task_sentences()  # task → language → sentence (each task module holds its own)

LANGUAGES = ("en", "zh")

_encode = json.JSONEncoder(ensure_ascii=False).encode
_quote = json.encoder.encode_basestring
_QUOTED = {task: {language: _quote(sentence) for language, sentence in by_language.items()}
           for task, by_language in SENTENCES.items()}


def task_sentence(task: str, language: str) -> str:
    try:
        return SENTENCES[task][language]
    except KeyError:
        raise ValueError(f"no instruction sentence for task {task!r} and language {language!r}; "
                         f"tasks: {', '.join(SENTENCES)}; languages: {', '.join(LANGUAGES)}") from None


def build_instruction(task: str, language: str, schema_items: list[Any], text: str) -> str:
    """The instruction string, byte-identical to the reference converter's
    ``json.dumps({"instruction": ..., "schema": ..., "input": ...}, ensure_ascii=False)``, built piecewise (faster)."""
    try:
        sentence = _QUOTED[task][language]
    except KeyError:
        sentence = _quote(task_sentence(task, language))
    return f'{{"instruction": {sentence}, "schema": {_encode(schema_items)}, "input": {_quote(text)}}}'


def escaped_head(task: str, language: str) -> str:
    """``{"instruction": "<sentence>", "schema": `` escaped once more, as it appears inside a JSON line: the
    converter writes instructions already quoted, piece by piece (this head once, then each group and input)."""
    return _quote(f'{{"instruction": {_quote(task_sentence(task, language))}, "schema": ')[1:-1]


def escaped_tail(text: str) -> str:
    """``, "input": "<text>"}`` escaped once more (the end of a quoted instruction, see :func:`escaped_head`)."""
    return _quote(f', "input": {_quote(text)}}}')[1:-1]


def parse_instruction(instruction: str) -> dict:
    """Inverse of :func:`build_instruction`: ``{"instruction", "schema", "input"}``; a ValueError for anything that
    is not an IEPile instruction."""
    try:
        parsed = orjson.loads(instruction)
    except orjson.JSONDecodeError as err:
        raise ValueError(f"not an IEPile instruction (malformed JSON: {err})") from None
    if not (isinstance(parsed, dict) and isinstance(parsed.get("schema"), list)
            and isinstance(parsed.get("input"), str)):
        raise ValueError("not an IEPile instruction (a JSON object with a schema list and an input string)")
    return parsed


def instruction_sentence(instruction: str) -> str:
    """The task sentence an IEPile instruction starts with ('' for any other prompt). Instructions of one task and
    language begin with the same tokens, so training batches them together and computes that prefix once
    (:mod:`iepile.training.prefix`)."""
    try:
        parsed = orjson.loads(instruction)
    except orjson.JSONDecodeError:
        return ""
    sentence = parsed.get("instruction") if isinstance(parsed, dict) else None
    return sentence if isinstance(sentence, str) else ""


def read_instruction(instruction: Any) -> tuple[str, Optional[list]]:
    """The input text and the schema group of an instruction, leniently: a prompt that is not an IEPile instruction
    still serves as the text (for the hallucination check), with no schema."""
    if not isinstance(instruction, str):
        return "", None
    try:
        parsed = orjson.loads(instruction)
    except orjson.JSONDecodeError:
        return instruction, None
    if not isinstance(parsed, dict):
        return instruction, None
    items = parsed.get("schema")
    return str(parsed.get("input", "")), items if isinstance(items, list) else None


def input_and_rebuilder(instruction: str) -> tuple[str, Callable[[str], str]]:
    """The text to shorten and how to rebuild the instruction around a shorter text.

    For an IEPile instruction (a JSON object with an ``"input"`` string) the input value is replaced and the object
    re-serialised exactly as the converter does (key order kept, ``ensure_ascii=False``), so the schema stays whole
    and the JSON valid. Any other instruction is shortened from its end."""
    try:
        parsed = orjson.loads(instruction)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("input"), str):

        def rebuild(text: str) -> str:
            return json.dumps({**parsed, "input": text}, ensure_ascii=False)

        return parsed["input"], rebuild
    return instruction, lambda text: text
