"""Helpers of the eval tests: real records from ../shared/data, conversion, and perfect predictions.

A perfect prediction of a test line is the training target (``render_output``) of the same record for the same
schema group, which is what converting the records with ``split=train``, all negatives and sorted order produces.
"""

from __future__ import annotations

import json
from pathlib import Path

from iepile.convert import convert
from iepile.instructions import parse_instruction
from iepile.records import validate
from iepile.schema import Schema
from iepile.tasks import get_task

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
                        source: str = "test", via_train: bool = False) -> list[dict]:
    """Test lines of the records with ``output`` = the training target of the same record and schema group:
    ``render_output`` of the line's group, or (``via_train``) the output of converting the same records with
    ``split=train``, all negatives and sorted order, after checking that the groups are identical."""
    options = {"split_num": split_num} if split_num is not None else {}
    test = convert(records, task=task, language=language, schema=schema, split="test", source=source, **options)
    if via_train:
        train = convert(records, task=task, language=language, schema=schema, split="train", source=source,
                        neg_ratio=-1, **options)
        assert len(test) == len(train), "train and test groups differ"
        for test_line, train_line in zip(test, train):
            assert same_group(test_line, train_line), (test_line["instruction"], train_line["instruction"])
            test_line["output"] = train_line["output"]
        return test
    task_impl = get_task(task)
    schema_obj = schema if isinstance(schema, Schema) else task_impl.schema_from_labels(schema)
    typed = [typed_record(task_impl, record) for record in records]
    for line in test:
        items = parse_instruction(line["instruction"])["schema"]
        answer = task_impl.render_output(typed[line["record_index"]], items, schema_obj)
        line["output"] = json.dumps(answer, ensure_ascii=False)
    return test


def typed_record(task, record: dict):
    """The record as the converter sees it: typed, repeated annotations dropped (first kept)."""
    typed = validate(record, task.record_type)
    items = getattr(typed, task.annotation_key) or []
    kept, seen = [], set()
    for item in items:
        key = task.dedupe_key(item)
        if key is None or key not in seen:
            seen.add(key)
            kept.append(item)
    setattr(typed, task.annotation_key, kept)
    return typed


def same_group(test_line: dict, train_line: dict) -> bool:
    test_instruction = parse_instruction(test_line["instruction"])
    train_instruction = parse_instruction(train_line["instruction"])
    return test_instruction == train_instruction


def write_jsonl(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pfn_records(path: Path) -> list[dict]:
    """RE records (with entity types, so they serve SPO and KG too) from a CoNLL04/SciERC ``*_triples.json`` file."""
    records = []
    for doc in json.loads(path.read_text(encoding="utf-8")):
        tokens = doc["tokens"]
        spans = [(" ".join(tokens[e["start"]:e["end"]]), e["type"]) for e in doc["entities"]]
        relations = [{"head": spans[r["head"]][0], "head_type": spans[r["head"]][1], "relation": r["type"],
                      "tail": spans[r["tail"]][0], "tail_type": spans[r["tail"]][1]} for r in doc["relations"]]
        records.append({"text": " ".join(tokens), "relation": relations})
    return records


def duee_records(path: Path) -> list[dict]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        events = [{"event_type": e["event_type"], "event_trigger": e["trigger"],
                   "arguments": [{"argument": a["argument"], "role": a["role"]} for a in e["arguments"]]}
                  for e in doc.get("event_list", [])]
        records.append({"text": doc["text"], "event": events})
    return records


def duee_schema(path: Path) -> dict[str, list[str]]:
    schema = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        schema[entry["event_type"]] = [role["role"] for role in entry["role_list"]]
    return schema


def spo_labels(records: list[dict]) -> list[str]:
    return sorted({f"{r['head_type']}_{r['relation']}_{r['tail_type']}" for rec in records for r in rec["relation"]})


def kg_schema(records: list[dict]) -> dict[str, list[str]]:
    schema: dict[str, list[str]] = {}
    for rec in records:
        for r in rec["relation"]:
            schema.setdefault(r["head_type"], [])
            if r["relation"] not in schema[r["head_type"]]:
                schema[r["head_type"]].append(r["relation"])
    return schema
