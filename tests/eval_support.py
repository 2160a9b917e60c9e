"""Helpers of the eval tests: real records from ../shared/data, conversion, and perfect predictions.

A perfect prediction of a test line is the training target (``render_output``) of the same record for the same
schema group, which is what converting the records with ``split=train``, all negatives and sorted order produces.
"""

from __future__ import annotations

import json
from pathlib import Path

from iepile.convert import convert
from iepile.instructions import parse_instruction

TAG_TYPES = {"PER": "person", "LOC": "location", "ORG": "organisation", "MISC": "misc"}


def conll_records(path: Path) -> list[dict]:
    """NER records from a ``token<TAB>BIO-tag`` file: text = tokens joined by spaces."""
    records, rows = [], []
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if line.strip():
            token, tag = line.split("\t")[0], line.split("\t")[-1]
            rows.append((token, tag))
        elif rows:
            records.append(bio_record(rows))
            rows = []
    return records


def bio_record(rows: list[tuple[str, str]]) -> dict:
    entities, offset, current = [], 0, None
    starts = []
    for token, _ in rows:
        starts.append(offset)
        offset += len(token) + 1
    text = " ".join(token for token, _ in rows)
    for index, (token, tag) in enumerate(rows):
        prefix, _, kind = tag.partition("-")
        if prefix == "I" and current and current[2] == kind:
            current[1] = starts[index] + len(token)
            continue
        if current:
            entities.append(current)
            current = None
        if prefix in ("B", "I"):
            current = [starts[index], starts[index] + len(token), kind]
    if current:
        entities.append(current)
    return {"text": text, "entity": [{"entity": text[s:e], "entity_type": TAG_TYPES.get(k, k)}
                                     for s, e, k in entities]}


def perfect_predictions(records: list[dict], task: str, schema, split_num=None, language: str = "en",
                        source: str = "test") -> list[dict]:
    """Test lines of the records with ``output`` = the training target of the same group."""
    options = {"split_num": split_num} if split_num is not None else {}
    test = convert(records, task=task, language=language, schema=schema, split="test", source=source, **options)
    train = convert(records, task=task, language=language, schema=schema, split="train", source=source,
                    neg_ratio=-1, **options)
    assert len(test) == len(train), "train and test groups differ"
    for test_line, train_line in zip(test, train):
        assert same_group(test_line, train_line), (test_line["instruction"], train_line["instruction"])
        test_line["output"] = train_line["output"]
    return test


def same_group(test_line: dict, train_line: dict) -> bool:
    test_instruction = parse_instruction(test_line["instruction"])
    train_instruction = parse_instruction(train_line["instruction"])
    return test_instruction == train_instruction


def write_jsonl(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
