"""What a conversion reports: its counts (merged across batches), the manifest written next to the output, the
warnings about input that converts but probably not as meant, and the rejects file."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from iepile import __version__
from iepile.convert.sampling import SamplingStats
from iepile.fileio import write_text_atomic
from iepile.schema import Schema
from iepile.tasks import TASKS
from iepile.tasks.base import Task


@dataclass
class Stats:
    """Counts of one conversion; merged across batches. ``records_in == converted + rejected`` always."""

    records_in: int = 0
    converted: int = 0
    rejected: int = 0
    records_without_instructions: int = 0
    records_without_annotation_key: int = 0  # e.g. RE records converted with --task NER: warned about at the end
    instructions: int = 0
    positive_items: int = 0
    negative_items: int = 0
    instructions_per_record: Counter = field(default_factory=Counter)
    groups_asked: Counter = field(default_factory=Counter)
    sampling: SamplingStats = field(default_factory=SamplingStats)

    def add(self, other: "Stats") -> None:
        for name in ("records_in", "converted", "rejected", "records_without_instructions",
                     "records_without_annotation_key", "instructions", "positive_items", "negative_items"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.instructions_per_record.update(other.instructions_per_record)
        self.groups_asked.update(other.groups_asked)
        self.sampling.add(other.sampling)

    def label_asked(self) -> Counter:
        asked: Counter = Counter()
        for labels, times in self.groups_asked.items():
            for label in labels:
                asked[label] += times
        return asked

    def to_json(self) -> dict:
        positives, negatives = self.positive_items, self.negative_items
        return {
            "records_in": self.records_in, "converted": self.converted, "rejected": self.rejected,
            "records_without_instructions": self.records_without_instructions,
            "records_without_annotation_key": self.records_without_annotation_key,
            "instructions": self.instructions,
            "instructions_per_record": {str(k): v for k, v in sorted(self.instructions_per_record.items())},
            "positive_items": positives, "negative_items": negatives,
            "negatives_per_positive": round(negatives / positives, 4) if positives else None,
            "hard_negatives_missing_positive": self.sampling.hard_missing_positive,
            "hard_negatives_outside_label_set": self.sampling.hard_outside_label_set,
            "label_asked": dict(sorted(self.label_asked().items())),
        }


def manifest_of(options, schema: Schema, converter, input_sha: str, stats: Stats, src: str) -> dict:
    """What ``OUT.manifest.json`` records: version, input and schema digests, the options that decide the output
    (not the worker count) and the counts."""
    chosen = asdict(options)
    for volatile in ("workers", "progress"):
        chosen.pop(volatile)
    chosen["split_num"] = converter.split_num
    chosen["source"] = converter.source
    return {"iepile_version": __version__, "input": src, "input_sha256": input_sha,
            "schema_sha256": schema.digest(), "options": chosen, "statistics": stats.to_json()}


def warnings_for(task: Task, stats: Stats, src: str) -> list[str]:
    """Input that converts without error but probably not as meant: no record carries the task's annotation field
    (for example RE records converted with ``--task NER``, which would become label-less NER records)."""
    if not stats.converted or stats.records_without_annotation_key < stats.converted:
        return []
    key = task.annotation_key
    message = f"no record in {src} has a `{key}` field, so every record was converted without annotations"
    readers: dict[str, list[str]] = {}
    for other in TASKS.values():
        readers.setdefault(other.annotation_key, []).append(other.name)
    found = sorted(_first_record_keys(src) & (readers.keys() - {key}))
    if found:
        message += f"; the records carry `{found[0]}`: did you mean --task {' or '.join(readers[found[0]])}?"
    return [message]


def _first_record_keys(src: str) -> set[str]:
    if src == "-":
        return set()
    with open(src, "rb") as stream:
        for row in stream:
            if row.strip():
                try:
                    record = orjson.loads(row)
                except orjson.JSONDecodeError:
                    return set()
                return set(record) if isinstance(record, dict) else set()
    return set()


def write_sidecars(dst: str, manifest: dict, rejects: list[dict]) -> None:
    """The manifest and the rejects next to the output, each written whole or not at all."""
    write_text_atomic(f"{dst}.manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    rejects_path = Path(f"{dst}.rejects.jsonl")
    if rejects:
        write_text_atomic(rejects_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rejects))
    elif rejects_path.exists():
        rejects_path.unlink()
