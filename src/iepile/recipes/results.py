"""A report step's results: each run's answers scored per dataset and mode, and the document written as
``results.json``, ``results.md`` and ``results.html`` with the commit and the machine."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Optional

from iepile.fileio import read_jsonl, write_text_atomic
from iepile.recipes.manifest import per_dataset


def machine_info() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"nproc": os.cpu_count(), "cpu": cpu, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "platform": platform.platform()}
    try:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    except ImportError:
        pass
    return info


def commit_info() -> dict:
    """The commit of the iepile code that ran (its checkout, when it is one)."""
    folder = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD") or "unknown", "dirty": bool(status)}


def answers_by_source(path: Path) -> dict[str, list[dict]]:
    by_source: dict[str, list[dict]] = defaultdict(list)
    for _, record in read_jsonl(path):
        by_source[str(record.get("source"))].append(record)
    return by_source


def load_confusable(spec: Optional[dict], base: Path, data: Path) -> dict[str, set]:
    """``{dataset: set of labels}`` that have hard negatives (keys and values of the dictionary section)."""
    if not spec:
        return {}
    path = Path(str(spec["file"]).replace("${data}", str(data)))
    if not path.is_absolute():
        path = base / path
    doc = json.loads(path.read_text(encoding="utf-8"))
    labels = {}
    for dataset, (task, section) in spec["sections"].items():
        entries = doc[task][section]
        labels[dataset] = set(entries) | {x for values in entries.values() for x in values}
    return labels


def score_rows(lines: list[dict], dataset: str, mode: str, run: dict, confusable: Optional[set]) -> dict:
    from iepile.evaluate import EvalOptions, evaluate_lines

    # a sampled test set leaves record_index gaps on purpose; any other problem is still listed in the result
    result = evaluate_lines(lines, EvalOptions(mode=mode, allow_missing=True))
    task, task_result = next(iter(result["tasks"].items()))  # a dataset has one task
    levels = task_result["levels"]
    main = task_result["micro"]
    answers = task_result["lines"]
    failed = task_result["parse"]["failed"]
    threshold = per_dataset(run.get("threshold"), dataset)  # tuned per dataset, or one for all
    predicted = sum(level["pred"] for level in levels.values())
    hallucinated = sum(level["errors"].get("hallucinated", 0) for level in levels.values())
    row = {"test": run["test"], "system": run["system"], "constrain": run["constrain"],
           "threshold": threshold, "dataset": dataset,
           "task": task, "mode": mode, "records": task_result["records"], "answers": answers,
           "level": main["level"], "f1": main["f1"], "precision": main["precision"], "recall": main["recall"],
           "tp": main["tp"], "pred": main["pred"], "gold": main["gold"],
           "levels_f1": {name: level["f1"] for name, level in levels.items()},
           "parse_failed": failed, "parse_failure_rate": round(failed / answers, 4) if answers else 0.0,
           "repaired": task_result["parse"]["repaired"],
           "predicted_items": predicted, "hallucinated": hallucinated,
           "hallucination_rate": round(hallucinated / predicted, 4) if predicted else 0.0,
           "errors": levels[main["level"]]["errors"] if main["level"] in levels else {}}
    if confusable and main["level"] in levels:
        level = levels[main["level"]]
        row["confusable_types"] = {label: level["by_type"].get(label, {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                                                        "tp": 0, "pred": 0, "gold": 0})
                                   for label in sorted(confusable)}
        row["confusions"] = [[gold, pred, n] for gold, pred, n in level["confusion"]
                             if gold in confusable and pred in confusable and gold != pred]
        row["wrong_type"] = level["errors"].get("wrong_type", 0)
    return row


def write_results(folder: Path, document: dict, step: dict) -> str:
    """``results.json`` (everything), ``results.md`` and ``results.html`` (the tables); returns the markdown."""
    write_text_atomic(folder / "results.json", json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    markdown = results_markdown(document, step)
    write_text_atomic(folder / "results.md", markdown)
    write_text_atomic(folder / "results.html", results_html(markdown, step.get("title") or document["recipe"]))
    return markdown


# ---- markdown --------------------------------------------------------------------------------------------------------


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _f1(value: float, mode: str) -> str:
    return f"{value:.2f}"


def results_markdown(doc: dict, step: dict) -> str:
    machine = doc["machine"]
    lines = [f"# {step.get('title') or doc['recipe']}", ""]
    if step.get("description"):
        lines += [step["description"].strip(), ""]
    lines += [f"- recipe: `{doc['recipe_file']}` (budget scale {doc['budget_scale']:g})",
              f"- commit: `{doc['commit']}`" + (" (with uncommitted changes)" if doc["dirty"] else ""),
              f"- machine: {machine.get('nproc')} CPUs ({machine.get('cpu')}), torch {machine.get('torch', '?')} "
              f"with {machine.get('torch_threads', '?')} threads, {machine.get('date')}",
              f"- model: {doc['model']}; data: `{doc['data']}`"]
    for name, result in doc["steps"].items():
        if "global_step" in result:
            planned = f"/{result['max_steps']}" if (result.get("max_steps") or -1) > 0 else ""
            lines.append(f"- {name}: {result['global_step']}{planned} {result.get('finetuning', 'lora')} "
                         f"fine-tuning steps, "
                         f"{result['tokens_seen']} tokens in {result['train_seconds']:.0f} s "
                         f"({result['tokens_per_second']:.0f} tokens/s)"
                         + ("; **stopped by the time cap**" if result.get("stopped_by_time_cap") else "")
                         + ("; stopped by the token cap" if result.get("stopped_by_token_cap") else ""))
    lines += ["", "F1 is micro F1 of the task's main level (NER entity, RE relation, EE trigger; EE also shows the "
              "argument level), in percent: strict mode = exact strings, each tuple once, lenient JSON parsing "
              "(code fences, json-repair); iepile mode = the reference scorer (duplicates count, P and R rounded "
              "first, answers parsed with json.loads only). Parse failures: answers "
              "that could not be parsed, per answer. Hallucination: predicted items with a span that is not in the "
              "input text, per predicted item.", ""]
    if doc.get("published"):
        lines += ["**Published numbers (13B models trained on IEPile, from the paper via `../shared/data/README.md`) "
                  "versus ours (SmolLM2-135M fine-tuned on 2 CPU cores for about an hour on a small mixed corpus, "
                  "a small test sample): they are not comparable and are shown side by side so that neither is "
                  "hidden.**", ""]
        lines += [f"- {name}: {text}" for name, text in doc["published"].items()] + [""]
    if doc.get("tuning"):
        lines += _tuning(doc["tuning"])
    rows = doc["rows"]
    tests = list(dict.fromkeys(row["test"] for row in rows))
    lines += _pooled(rows, tests)
    for dataset in dict.fromkeys(row["dataset"] for row in rows):
        subset = [row for row in rows if row["dataset"] == dataset]
        first = subset[0]
        lines += [f"## {dataset} ({first['task']})", ""]
        published = (doc.get("published") or {}).get(dataset)
        if published:
            lines += [f"Published (13B): {published}", ""]
        sizes = {row["test"]: f"{row['answers']} instructions / {row['records']} records" for row in subset}
        lines += ["Test sample: " + "; ".join(f"{t}: {s}" for t, s in sizes.items()), ""]
        header = ["test"] if len(tests) > 1 else []
        header += ["system", "constrained", "mode", "F1"]
        event = any("argument" in row["levels_f1"] for row in subset)  # event tasks: arguments beside the main level
        if event:
            header.append("argument F1")
        header += ["parse fail %", "halluc. %", "predicted"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in subset:
            cells = [row["test"]] if len(tests) > 1 else []
            cells += [row["system"], "yes" if row["constrain"] else "no", row["mode"], _f1(row["f1"], row["mode"])]
            if event:
                arg = row["levels_f1"].get("argument")
                cells.append(_f1(arg, row["mode"]) if arg is not None else "-")
            cells += [_pct(row["parse_failure_rate"]), _pct(row["hallucination_rate"]), str(row["predicted_items"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        if len(tests) > 1:
            lines += _pivot(subset, tests)
        if any("confusable_types" in row for row in subset):
            lines += _confusable(subset)
    return "\n".join(lines) + "\n"


def _tuning(tuning: dict) -> list[str]:
    """How ``--threshold`` was chosen: dev F1 per dataset and threshold, the macro average, the curves."""
    name = lambda t: "greedy" if t is None else f"{t:g}"  # noqa: E731
    thresholds = [t for t, _ in tuning["macro_f1"]]
    datasets = list(dict.fromkeys(p["dataset"] for p in tuning["points"]))
    f1 = {(p["dataset"], p["threshold"]): p for p in tuning["points"]}
    own = tuning.get("thresholds")
    how = ("each dataset's best F1 is chosen where its dev sample holds at least "
           f"{tuning.get('min_gold')} gold items, else the best F1 averaged over datasets" if own
           else "the best F1 averaged over datasets is chosen")
    lines = [f"## Threshold tuned on dev: {'per dataset' if own else name(tuning['threshold'])}", "",
             f"System {tuning['system']}{' +constrain' if tuning['constrain'] else ''}; strict F1 (P/R) on the dev "
             f"sample, per threshold (gold items in brackets); {how} (ties: greedy).", "",
             "| dataset | " + " | ".join(name(t) for t in thresholds) + " | chosen |",
             "|---|" + "---|" * (len(thresholds) + 1)]
    for dataset in datasets:
        cells = [f"{f1[dataset, t]['f1']:.2f} ({f1[dataset, t]['precision']:.0f}/{f1[dataset, t]['recall']:.0f})"
                 if (dataset, t) in f1 else "-" for t in thresholds]
        gold = next(p["gold"] for p in tuning["points"] if p["dataset"] == dataset)
        chosen = own[dataset] if own else tuning["threshold"]
        lines.append(f"| {dataset} ({gold}) | " + " | ".join(cells) + f" | {name(chosen)} |")
    lines.append("| **mean** | " + " | ".join(f"{m:.2f}" for _, m in tuning["macro_f1"])
                 + f" | {name(tuning['threshold'])} |")
    lines.append("")
    lines += [f"![{dataset}: precision/recall by threshold]({plot})" for dataset, plot in tuning["plots"].items()]
    return lines + [""]


def results_html(markdown_text: str, title: str) -> str:
    """results.md as a standalone page (its tables and the precision/recall images beside it)."""
    import markdown
    from html import escape

    body = markdown.markdown(markdown_text, extensions=["tables"])
    style = ("body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{padding:3px 8px;border-bottom:1px solid #ddd}"
             "img{max-width:48%;margin:4px}code{background:#f4f4f4;padding:0 3px}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>{style}</style>"
            f"</head><body>{body}</body></html>\n")


def _pooled(rows: list[dict], tests: list[str]) -> list[str]:
    """One line per system: micro F1 of the main level over every dataset's tuples pooled (strict mode), per test
    conversion, so that a finding reads in one table before the per-dataset detail."""
    strict = [row for row in rows if row["mode"] == "strict" and "tp" in row]
    datasets = list(dict.fromkeys(row["dataset"] for row in strict))
    if len(datasets) < 2:
        return []
    lines = [f"## All datasets pooled (strict micro F1 over {', '.join(datasets)})", "",
             "| system | " + " | ".join(tests) + " |", "|---|" + "---|" * len(tests)]
    for system, constrain in dict.fromkeys((row["system"], row["constrain"]) for row in strict):
        cells = []
        for test in tests:
            picked = [r for r in strict if r["test"] == test and r["system"] == system and r["constrain"] == constrain]
            tp, pred, gold = (sum(r[k] for r in picked) for k in ("tp", "pred", "gold"))
            cells.append(f"{100 * 2 * tp / (pred + gold):.2f} (tp {tp}, pred {pred}, gold {gold})"
                         if pred + gold else "-")
        lines.append(f"| {system}{' +constrain' if constrain else ''} | " + " | ".join(cells) + " |")
    return lines + [""]


def _pivot(subset: list[dict], tests: list[str]) -> list[str]:
    mode = subset[0]["mode"]
    lines = [f"F1 ({mode}) by test conversion:", "", "| system | " + " | ".join(tests) + " |",
             "|---|" + "---|" * len(tests)]
    systems = dict.fromkeys((row["system"], row["constrain"]) for row in subset)
    for system, constrain in systems:
        cells = []
        for test in tests:
            row = next((r for r in subset if r["test"] == test and r["system"] == system
                        and r["constrain"] == constrain and r["mode"] == mode), None)
            cells.append(_f1(row["f1"], mode) if row else "-")
        lines.append(f"| {system}{' +constrain' if constrain else ''} | " + " | ".join(cells) + " |")
    return lines + [""]


def _confusable(subset: list[dict]) -> list[str]:
    mode = subset[0]["mode"]
    rows = [row for row in subset if row["mode"] == mode and "confusable_types" in row]
    labels = sorted({label for row in rows for label in row["confusable_types"]})
    lines = [f"Per-type F1 ({mode}) of the labels with hard negatives, and confusions between them "
             "(wrong_type errors: same span, another confusable label):", "",
             "| system | " + " | ".join(labels) + " | wrong_type | confusions (gold → predicted: n) |",
             "|---|" + "---|" * (len(labels) + 2)]
    for row in rows:
        name = f"{row['system']}{' +constrain' if row['constrain'] else ''}"
        cells = [_f1(row["confusable_types"][label]["f1"], mode) for label in labels]
        confusions = ", ".join(f"{g} → {p}: {n}" for g, p, n in row["confusions"]) or "none"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['wrong_type']} | {confusions} |")
    return lines + [""]
