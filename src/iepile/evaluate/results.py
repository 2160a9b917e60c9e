"""The result document: everything the evaluator accumulated, as plain JSON with stable keys.

``summary[task]`` holds micro P/R/F1 (and tp/pred/gold) of the task's main level (NER entity, RE relation, SPO triple,
EE trigger, EET trigger, EEA argument, KG attribute); ``tasks[task].levels[level]`` has every level with macro
averages, per-source and per-type breakdowns, error counts and the confusion table. In ``iepile`` mode
``reference`` repeats the totals under the reference scorer's own keys.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from iepile import __version__
from iepile.evaluate.errors import KINDS
from iepile.evaluate.metrics import bootstrap, macro, prf, scores
from iepile.evaluate.scorer import Evaluator, LevelStats, TaskStats
from iepile.tasks import get_task

TOP_CONFUSIONS = 10
NONE_LABEL = "∅"


def label_name(label: Any) -> str:
    if label is None:
        return NONE_LABEL
    return " / ".join(label) if isinstance(label, tuple) else str(label)


def build_result(evaluator: Evaluator, path: str = "") -> dict:
    mode, options = evaluator.mode, evaluator.options
    tasks = {name: task_result(evaluator, name, evaluator.tasks[name]) for name in sorted(evaluator.tasks)}
    summary = {name: task["micro"] for name, task in tasks.items()}
    result = {
        "iepile_version": __version__,
        "file": path,
        "mode": mode.name,
        "mode_description": mode.description,
        "parsing": "lenient (fences, surrounding text, json-repair)" if evaluator.repair else "strict (json.loads)",
        "ignore_off_schema": options.ignore_off_schema,
        "reference_gold": options.reference_gold,
        "lines": evaluator.lines,
        "records": sum(task["records"] for task in tasks.values()),
        "bad_lines": evaluator.bad_lines[:100],
        "problems": {"count": sum(evaluator.problems.values()), "kinds": dict(sorted(evaluator.problems.items())),
                     "examples": list(evaluator.problem_examples)},
        "parse": parse_totals(evaluator.tasks.values()),
        "summary": summary,
        "macro_over_tasks": macro(summary.values(), mode.rounded),
        "tasks": tasks,
    }
    if mode.reference:
        result["reference"] = {name: reference_view(evaluator, name) for name in tasks}
    return result


def parse_totals(all_stats) -> dict:
    totals = {"clean": 0, "repaired": 0, "failed": 0, "repairable": 0, "off_schema_keys": 0}
    for stats in all_stats:
        for key in totals:
            totals[key] += stats.parse.get(key, 0)
    return totals


def task_result(evaluator: Evaluator, name: str, stats: TaskStats) -> dict:
    levels = {level: level_result(evaluator, level_stats, stats)
              for (task, level), level_stats in evaluator.levels.items() if task == name}
    main = next(iter(levels), None)
    micro = {"level": main, **{k: levels[main][k] for k in ("precision", "recall", "f1", "tp", "pred", "gold")}} \
        if main else {"level": None, "precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "pred": 0, "gold": 0}
    return {
        "records": stats.records,
        "lines": stats.lines,
        "parse": {key: stats.parse.get(key, 0) for key in ("clean", "repaired", "failed", "repairable",
                                                           "off_schema_keys")},
        "parse_failures": stats.failure_examples,
        "micro": micro,
        "levels": levels,
    }


def level_result(evaluator: Evaluator, stats: LevelStats, task_stats: TaskStats) -> dict:
    rounded = evaluator.mode.rounded
    by_source = {source: scores(counts, rounded) for source, counts in sorted(stats.by_source.items())}
    labels = sorted(set(stats.type_pred) | set(stats.type_gold), key=label_name)
    by_type = {label_name(label): prf(stats.type_tp[label], stats.type_pred[label], stats.type_gold[label], rounded)
               for label in labels}
    errors = {kind: stats.errors.get(kind, 0) for kind in KINDS}
    errors["parse_failure"] = task_stats.parse.get("failed", 0)
    result = {
        **scores(stats.total, rounded),
        "macro_type": macro(by_type.values(), rounded),
        "macro_source": macro(by_source.values(), rounded),
        "by_source": by_source,
        "by_type": by_type,
        "errors": errors,
        "confusion": confusion_rows(stats),
        "top_confusions": top_confusions(stats),
        "examples": dict(stats.examples),
    }
    ci = bootstrap(stats.per_record, evaluator.options.bootstrap, evaluator.options.seed, rounded)
    if ci:
        result["ci95"] = ci
    return result


def confusion_rows(stats: LevelStats) -> list[list]:
    """``[gold type, predicted type, count]``; ``∅`` = nothing on that side (missed or spurious)."""
    cells = Counter({(label, label): n for label, n in stats.type_tp.items()}) + stats.confusion
    return [[label_name(gold), label_name(pred), n] for (gold, pred), n in
            sorted(cells.items(), key=lambda kv: (-kv[1], label_name(kv[0][0]), label_name(kv[0][1])))]


def top_confusions(stats: LevelStats) -> list[list]:
    pairs = [(gold, pred, n) for (gold, pred), n in stats.confusion.items()
             if gold is not None and pred is not None and gold != pred]
    pairs.sort(key=lambda row: (-row[2], label_name(row[0]), label_name(row[1])))
    return [[label_name(gold), label_name(pred), n] for gold, pred, n in pairs[:TOP_CONFUSIONS]]


# -- the reference scorer's own result keys (iepile mode) -----------------------------------------------------------

def reference_view(evaluator: Evaluator, name: str) -> dict:
    """``{"total": {...}, source: {...}}`` with 总样本数 (records), 错误数 (unparseable answers), P, R, F1 — or
    event_*/argument_* for EE and EEA — like the reference's result file."""
    stats = evaluator.tasks[name]
    view = {"total": reference_row(evaluator, name, None, stats.records, stats.parse.get("failed", 0))}
    for source in sorted(stats.records_by_source):
        view[source] = reference_row(evaluator, name, source, stats.records_by_source[source],
                                     stats.parse_by_source[source].get("failed", 0))
    return view


def reference_row(evaluator: Evaluator, name: str, source, records: int, errors: int) -> dict:
    row: dict[str, Any] = {"总样本数": records, "错误数": errors}
    levels = get_task(name).reference_levels
    pairs = zip(("event_", "argument_"), levels) if levels else [("", None)]
    for prefix, level in pairs:
        level = level or next((lvl for task, lvl in evaluator.levels if task == name), None)
        stats = evaluator.levels.get((name, level))
        counts = (stats.total if source is None else stats.by_source.get(source)) if stats else None
        values = scores(counts, True) if counts else {"precision": 0.0, "recall": 0.0, "f1": 0.0}
        row.update({f"{prefix}P": values["precision"], f"{prefix}R": values["recall"], f"{prefix}F1": values["f1"]})
    return row
