"""The evaluator: reads prediction lines, groups them into records, scores each record once, and accumulates.

A record is identified by ``(task, source, record_index)`` when the line carries our ``record_index`` (so different
records with the same text never merge), else by ``(task, source, id)`` like the reference. Per line only compact
data is kept (parsed tuples and the asked schema items); the gold label is parsed once per record, at the end.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any, Iterable, Optional

import orjson

from iepile.config import check_ranges, opt
from iepile.evaluate.errors import KINDS, classify
from iepile.instructions import read_instruction
from iepile.evaluate.matching import Mode, drop_off_schema, get_mode, match, normalize_text, normalize_value
from iepile.evaluate.metrics import Counts, PerRecord
from iepile.inference.answers import CLEAN, FAILED, REPAIRED, parse_answer
from iepile.tasks import get_task
from iepile.tasks.base import Task


_LABEL = itemgetter(1)


class EvalError(ValueError):
    """A prediction file the evaluator cannot score (says which line and what to do)."""


class NotContiguous(Exception):
    """A record's lines are not next to each other: streaming must give way to holding every record."""


@dataclass
class EvalOptions:
    """Every setting of ``iepile eval`` (the command is built from these fields)."""

    mode: str = opt("iepile", "iepile (reference-compatible numbers), strict or normalized.", short="-m")
    task: Optional[str] = opt(None, "Score every line as this task (default: each line's task field).", short="-t")
    ignore_off_schema: bool = opt(False, "Drop answer keys that were not asked in that line's schema group (always "
                                  "counted).")
    repair: Optional[bool] = opt(None, "Lenient parsing (code fences, text around the JSON, json-repair). Default: "
                                 "off in iepile mode, on otherwise.", flag="--repair/--no-repair")
    bootstrap: int = opt(0, "Resamples for 95% confidence intervals (e.g. 1000; 0 = none).", min=0)
    seed: int = opt(0, "Seed of the bootstrap.")
    examples: int = opt(5, "Examples kept per task, level and error kind (JSON and report).", min=0)
    reference_gold: bool = opt(False, "Build gold tuples exactly like the reference (keeps its EE/EEA gold bugs: "
                               "empty triggers and arguments, duplicate arguments, argument-less EEA events).")

    def validate(self) -> None:
        check_ranges(self)
        self.resolved_mode()

    def resolved_mode(self) -> Mode:
        return get_mode(self.mode)

    def resolved_repair(self) -> bool:
        return self.resolved_mode().repair if self.repair is None else self.repair


class Record:
    """What one record accumulates over its lines."""

    __slots__ = ("task", "source", "key", "text", "label", "item_groups", "pred", "lines", "failed")

    def __init__(self, task: Task, source: str, key: Any, text: str, label: Any):
        self.task, self.source, self.key, self.text, self.label = task, source, key, text, label
        self.item_groups: list = []
        self.pred: list[tuple] = []
        self.lines = 0
        self.failed = 0


@dataclass
class LevelStats:
    """Everything accumulated for one task and level."""

    total: Counts = field(default_factory=Counts)
    by_source: dict = field(default_factory=lambda: defaultdict(Counts))
    type_tp: Counter = field(default_factory=Counter)       # per label; also the confusion table's diagonal
    type_pred: Counter = field(default_factory=Counter)
    type_gold: Counter = field(default_factory=Counter)
    per_record: PerRecord = field(default_factory=PerRecord)
    errors: Counter = field(default_factory=Counter)
    confusion: Counter = field(default_factory=Counter)     # (gold label, predicted label) of the errors
    examples: dict = field(default_factory=lambda: defaultdict(list))


@dataclass
class TaskStats:
    records: int = 0
    lines: int = 0
    parse: Counter = field(default_factory=Counter)
    parse_by_source: dict = field(default_factory=lambda: defaultdict(Counter))
    records_by_source: Counter = field(default_factory=Counter)
    failure_examples: list = field(default_factory=list)


class Evaluator:
    def __init__(self, options: EvalOptions, streaming: bool = False):
        """``streaming``: score each record as soon as the next record starts (files written by convert/predict keep
        a record's lines together); raises :class:`NotContiguous` if a scored record shows up again."""
        options.validate()
        self.options = options
        self.streaming = streaming
        self.current: Optional[tuple] = None
        self.scored_keys: set = set()
        self.mode = options.resolved_mode()
        self.repair = options.resolved_repair()
        self.records: dict[tuple, Record] = {}
        self.tasks: dict[str, TaskStats] = defaultdict(TaskStats)
        self.levels: dict[tuple[str, str], LevelStats] = defaultdict(LevelStats)
        self.lines = 0
        self.bad_lines: list[int] = []

    # -- reading ---------------------------------------------------------------------------------------------------
    def add_raw(self, data: bytes, number: int) -> None:
        """One line of a prediction file; malformed lines are counted and reported, not fatal."""
        if not data.strip():
            return
        try:
            line = orjson.loads(data)
        except orjson.JSONDecodeError:
            line = None
        if not isinstance(line, dict):
            self.bad_lines.append(number)
            return
        self.add_line(line, number)

    def add_line(self, line: dict, number: int = 0) -> None:
        task = self.task_of(line, number)
        source = str(line.get("source", "None"))
        text, items = read_instruction(line.get("instruction"))
        record = self.record_for(line, task, source, text)
        record.lines += 1
        record.item_groups.append(items)
        stats = self.tasks[task.name]
        stats.lines += 1
        self.lines += 1
        parsed = parse_answer(line.get("output"), self.repair)
        self.count_parse(stats, source, parsed.status)
        if parsed.status == FAILED:
            record.failed += 1
            self.note_failure(stats, line)
            return
        answer = parsed.value
        if items is not None:
            filtered, off_schema = drop_off_schema(answer, items, task)
            if off_schema:
                stats.parse["off_schema_keys"] += off_schema
                stats.parse_by_source[source]["off_schema_keys"] += off_schema
                if self.options.ignore_off_schema:
                    answer = filtered
        record.pred.extend(task.answer_tuples(answer, items, reference=self.mode.reference))

    def task_of(self, line: dict, number: int) -> Task:
        name = self.options.task or line.get("task")
        if not name:
            raise EvalError(f"line {number} has no \"task\" field; pass --task")
        try:
            return get_task(str(name))
        except ValueError as err:
            raise EvalError(f"line {number}: {err}") from None

    def record_for(self, line: dict, task: Task, source: str, text: str) -> Record:
        identity = ("index", line["record_index"]) if "record_index" in line else ("id", line.get("id", text))
        key = (task.name, source, identity)
        if self.streaming and key != self.current:
            self.advance_to(key)
        record = self.records.get(key)
        if record is None:
            record = self.records[key] = Record(task, source, key, text, line.get("label"))
        return record

    def advance_to(self, key: tuple) -> None:
        """Score the record that just ended; a key seen before means the file is not grouped by record."""
        if key in self.scored_keys:
            raise NotContiguous(key)
        if self.current is not None:
            self.scored_keys.add(self.current)
            self.score_record(self.records.pop(self.current))
        self.current = key

    def count_parse(self, stats: TaskStats, source: str, status: str) -> None:
        stats.parse[status] += 1
        stats.parse_by_source[source][status] += 1

    def note_failure(self, stats: TaskStats, line: dict) -> None:
        output = line.get("output")
        if not self.repair and parse_answer(output, True).status != FAILED:
            stats.parse["repairable"] += 1
        if len(stats.failure_examples) < self.options.examples:
            stats.failure_examples.append({"source": str(line.get("source", "None")),
                                           "output": str(output)[:500]})

    # -- scoring ---------------------------------------------------------------------------------------------------
    def finish(self) -> None:
        """Score every record (once all its lines have been read)."""
        for record in self.records.values():
            self.score_record(record)
        self.records.clear()

    def score_record(self, record: Record) -> None:
        task = record.task
        stats = self.tasks[task.name]
        stats.records += 1
        stats.records_by_source[record.source] += 1
        gold = task.gold_tuples(read_label(record.label), groups=record.item_groups,
                                reference=self.options.reference_gold)
        pred, text = record.pred, record.text
        if self.mode.normalize:
            gold = [normalize_value(item) for item in gold]
            pred = [normalize_value(item) for item in pred]
            text = normalize_text(text)
        levels = task.eval_levels()
        if len(levels) == 1 and all(item[0] == levels[0] for item in chain(gold, pred)):
            self.score_level(record, levels[0], gold, pred, text)
            return
        gold_by_level, pred_by_level = by_level(gold), by_level(pred)
        for level in dict.fromkeys([*levels, *gold_by_level, *pred_by_level]):
            self.score_level(record, level, gold_by_level.get(level, []), pred_by_level.get(level, []), text)

    def score_level(self, record: Record, level: str, gold: list, pred: list, text: str) -> None:
        stats = self.levels[(record.task.name, level)]
        matched = match(gold, pred, self.mode.multiset)
        tp, n_pred, n_gold = matched.counts
        stats.total.add(tp, n_pred, n_gold)
        stats.by_source[record.source].add(tp, n_pred, n_gold)
        stats.per_record.append(tp, n_pred, n_gold)
        self.count_types(stats, matched)
        stats.errors["correct"] += tp
        if matched.spurious or matched.missed:
            self.analyse_errors(stats, record, matched, text)

    def count_types(self, stats: LevelStats, matched) -> None:
        correct = list(map(_LABEL, matched.correct))
        stats.type_tp.update(correct)
        stats.type_pred.update(correct)
        stats.type_gold.update(correct)
        if matched.spurious:
            stats.type_pred.update(map(_LABEL, matched.spurious))
        if matched.missed:
            stats.type_gold.update(map(_LABEL, matched.missed))

    def analyse_errors(self, stats: LevelStats, record: Record, matched, text: str) -> None:
        for kind, pred, gold in classify(matched.spurious, matched.missed, text):
            stats.errors[kind] += 1
            stats.confusion[(gold[1] if gold else None, pred[1] if pred else None)] += 1
            examples = stats.examples[kind]
            if len(examples) < self.options.examples:
                examples.append({"source": record.source, "text": record.text,
                                 "pred": list(pred[1:]) if pred else None, "gold": list(gold[1:]) if gold else None})


def by_level(tuples: Iterable[tuple]) -> dict[str, list[tuple]]:
    levels: dict[str, list[tuple]] = {}
    for item in tuples:
        levels.setdefault(item[0], []).append(item)
    return levels


def read_label(label: Any) -> list[dict]:
    """The record's raw annotation list from the ``label`` field (a JSON string, or already a list)."""
    if isinstance(label, str):
        try:
            label = orjson.loads(label)
        except orjson.JSONDecodeError:
            return []
    return [item for item in label if isinstance(item, dict)] if isinstance(label, list) else []


__all__ = ["EvalError", "EvalOptions", "Evaluator", "KINDS", "CLEAN", "REPAIRED", "FAILED"]
