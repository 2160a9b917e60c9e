"""The evaluator: reads prediction lines, groups them into records, scores each record once, and accumulates.

A record is identified by ``(task, source, record_index)`` when the line carries our ``record_index`` (so different
records with the same text never merge), else by ``(task, source, id)`` like the reference. Per line only compact
data is kept (parsed tuples and the asked schema items); the gold label is parsed once per record, at the end.
"""

from __future__ import annotations

import bisect
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
from iepile.inference.answers import CLEAN, FAILED, REPAIRED, ParsedAnswer, parse_answer
from iepile.tasks import get_task
from iepile.tasks.base import Task


_LABEL = itemgetter(1)
BOM = b"\xef\xbb\xbf"
MAX_PROBLEM_EXAMPLES = 20
MALFORMED_LINE = ParsedAnswer(None, FAILED, "the prediction line itself is malformed")


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
    allow_missing: bool = opt(False, "Score even when records are missing (record_index gaps), a line cannot be "
                              "read or a gold label is bad; each is reported (default: an error, since the scores "
                              "would leave that gold out).")

    def validate(self) -> None:
        check_ranges(self)
        self.resolved_mode()

    def resolved_mode(self) -> Mode:
        return get_mode(self.mode)

    def resolved_repair(self) -> bool:
        return self.resolved_mode().repair if self.repair is None else self.repair


class Record:
    """What one record accumulates over its lines (``number``: its first line, for messages)."""

    __slots__ = ("task", "source", "key", "text", "label", "item_groups", "pred", "lines", "failed", "number")

    def __init__(self, task: Task, source: str, key: Any, text: str, label: Any, number: int = 0):
        self.task, self.source, self.key, self.text, self.label = task, source, key, text, label
        self.number = number
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


class IndexRanges:
    """The ``record_index`` values seen, as sorted disjoint ``[start, end)`` ranges: memory grows with the gaps, not
    with the records (files written by convert and predict hold one range)."""

    def __init__(self) -> None:
        self.ranges: list[list[int]] = []

    def add(self, index: int) -> None:
        ranges = self.ranges
        if ranges and ranges[-1][0] <= index <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], index + 1)
            return
        position = bisect.bisect_left(ranges, [index + 1])
        ranges.insert(position, [index, index + 1])
        merged: list[list[int]] = []
        for start, end in ranges:  # rare (an out-of-order index): merge what now touches
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.ranges = merged

    def gaps(self) -> list[tuple[int, int]]:
        """The ``[start, end)`` ranges missing between 0 and the highest index seen."""
        gaps, previous = [], 0
        for start, end in self.ranges:
            if start > previous:
                gaps.append((previous, start))
            previous = end
        return gaps


class Evaluator:
    def __init__(self, options: EvalOptions, streaming: bool = False, path: str = ""):
        """``streaming``: score each record as soon as the next record starts (files written by convert/predict keep
        a record's lines together); raises :class:`NotContiguous` if a scored record shows up again. ``path`` names
        the file in messages."""
        options.validate()
        self.path = path
        self.indices: dict[tuple, IndexRanges] = defaultdict(IndexRanges)
        self.problems: Counter = Counter()  # kind → count: what would make the scores leave gold out
        self.problem_examples: list[str] = []
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

    # -- problems --------------------------------------------------------------------------------------------------
    def where(self, number: int) -> str:
        return f"{self.path}:{number}" if self.path else f"line {number}"

    def problem(self, kind: str, message: str, count: int = 1) -> None:
        """Something that would leave gold out of the scores: counted, the first ones kept as messages."""
        self.problems[kind] += count
        if len(self.problem_examples) < MAX_PROBLEM_EXAMPLES:
            self.problem_examples.append(message)

    # -- reading ---------------------------------------------------------------------------------------------------
    def add_raw(self, data: bytes, number: int) -> None:
        """One line of a prediction file. A UTF-8 BOM is dropped (files joined from Windows tools carry one). A
        malformed line is a parse failure of its record: its fields are read back leniently so that its gold stays
        in the denominator; a line with nothing to read back is a problem (its gold is unknown)."""
        if data.startswith(BOM):
            data = data[len(BOM):]
        if not data.strip():
            return
        try:
            line = orjson.loads(data)
        except orjson.JSONDecodeError:
            line = None
        if isinstance(line, dict):
            self.add_line(line, number)
            return
        self.bad_lines.append(number)
        salvaged = salvage_line(data)
        if salvaged is None:
            self.problem("unreadable_lines", f"{self.where(number)}: not a JSON object with a label; its record and "
                         "gold could not be read")
            return
        self.add_line(salvaged, number, malformed=True)

    def add_line(self, line: dict, number: int = 0, malformed: bool = False) -> None:
        """One prediction line; ``malformed``: read back from a broken line, so its answer counts as failed."""
        task = self.task_of(line, number)
        source = str(line.get("source", "None"))
        text, items = read_instruction(line.get("instruction"))
        record = self.record_for(line, task, source, text, number)
        record.lines += 1
        record.item_groups.append(items)
        stats = self.tasks[task.name]
        stats.lines += 1
        self.lines += 1
        parsed = MALFORMED_LINE if malformed else parse_answer(line.get("output"), self.repair)
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
        """The line's task; ``--task`` names it for lines without one, and a line of another task is an error
        (scored as the wrong task its gold would read as empty tuples)."""
        name = self.options.task or line.get("task")
        if not name:
            raise EvalError(f"{self.where(number)}: task: the line has no \"task\" field; pass --task")
        try:
            task = get_task(str(name))
            own = get_task(str(line["task"])) if self.options.task and line.get("task") else task
        except ValueError as err:
            raise EvalError(f"{self.where(number)}: task: {err}") from None
        if own.name != task.name:
            raise EvalError(f"{self.where(number)}: task: the line is a {own.name} line, but --task {task.name} was "
                            "given; drop --task, or give the file of that task")
        return task

    def record_for(self, line: dict, task: Task, source: str, text: str, number: int = 0) -> Record:
        if "record_index" in line:
            index = line["record_index"]
            identity = ("index", index)
            if isinstance(index, int) and not isinstance(index, bool) and index >= 0:
                if not task.test_items_use_record:  # EEA asks nothing of a record without events: gaps are normal
                    self.indices[(task.name, source)].add(index)
            else:
                self.problem("bad_record_index", f"{self.where(number)}: record_index: expected a non-negative "
                             f"integer, got {index!r}")
        else:
            identity = ("id", line.get("id", text))
        key = (task.name, source, identity)
        if self.streaming and key != self.current:
            self.advance_to(key)
        record = self.records.get(key)
        if record is None:
            record = self.records[key] = Record(task, source, key, text, line.get("label"), number)
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
        """Score every record (once all its lines have been read), then report the records missing between the
        ``record_index`` values seen (their gold would otherwise silently leave the denominator)."""
        for record in self.records.values():
            self.score_record(record)
        self.records.clear()
        for (task, source), seen in sorted(self.indices.items()):
            for start, end in seen.gaps():
                shown = f"{start}" if end - start == 1 else f"{start}-{end - 1}"
                self.problem("missing_records", f"{self.path or 'predictions'}: {task} {source}: no line of "
                             f"record_index {shown} ({end - start} record(s) missing)", end - start)

    def score_record(self, record: Record) -> None:
        task = record.task
        stats = self.tasks[task.name]
        stats.records += 1
        stats.records_by_source[record.source] += 1
        annotations, bad = read_label(record.label, task)
        if bad:
            self.problem("bad_gold", f"{self.where(record.number)}: label: {bad}")
        gold = task.gold_tuples(annotations, groups=record.item_groups, reference=self.options.reference_gold)
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


def read_label(label: Any, task: Optional[Task] = None) -> tuple[list[dict], Optional[str]]:
    """The record's raw annotation list from the ``label`` field (a JSON string, or already a list), and why part
    or all of it could not be read (None when all of it could): annotations that are not objects, or lack the
    fields ``task`` reads, are left out and reported, never read as empty strings."""
    if label is None:
        return [], "no label field (the gold annotations)"
    if isinstance(label, str):
        try:
            label = orjson.loads(label.removeprefix("\ufeff"))
        except orjson.JSONDecodeError as err:
            return [], f"not valid JSON ({err})"
    if not isinstance(label, list):
        return [], f"expected a JSON list of annotations, got {type(label).__name__}"
    kept, problem = [], None
    for position, item in enumerate(label):
        reason = task.gold_problem(item) if task is not None else (None if isinstance(item, dict) else "not an "
                                                                                                        "object")
        if reason is None:
            kept.append(item)
        elif problem is None:
            problem = f"annotation {position}: {reason}"
    return kept, problem


def salvage_line(data: bytes) -> Optional[dict]:
    """The fields of a malformed prediction line (cut short, a stray character), read leniently: enough to keep
    its record and gold when it still has a ``label``; None when nothing usable is left."""
    from json_repair import loads

    try:
        value = loads(data.decode("utf-8", "replace"))
    except Exception:  # json-repair gives up in its own ways; nothing could be read then
        return None
    return value if isinstance(value, dict) and "label" in value else None


__all__ = ["EvalError", "EvalOptions", "Evaluator", "KINDS", "CLEAN", "REPAIRED", "FAILED"]
