"""``iepile stats FILE`` and the dataset cards of a corpus: counts, token-length percentiles, answer tokens per
dataset and task, and the share of empty answers."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

from iepile.data.balance import is_empty_answer
from iepile.fileio import read_jsonl
from iepile.instructions import read_instruction
from iepile.text import CJK_CLASS

if TYPE_CHECKING:
    from iepile.data.manifest import DatasetSpec

class TokenCounter:
    """Token lengths with a local Hugging Face tokenizer, or without one a count of words and CJK characters."""

    _UNITS = re.compile(f"[{CJK_CLASS}]|[^\\s{CJK_CLASS}]+")

    def __init__(self, tokenizer: Optional[str] = None):
        self.name = tokenizer or "words+cjk-chars"
        self.tokenizer = None
        if tokenizer == "default":
            from iepile.modeling.loading import default_model_path

            self.name, tokenizer = "default", str(default_model_path())
        if tokenizer:
            import os

            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(tokenizer, local_files_only=True)
        self._answers: dict[str, int] = {}

    def answer_lengths(self, answers: list[str]) -> list[int]:
        """:meth:`lengths` of answers, remembered: a build counts each answer for the balance, the training mix
        and the dataset card, and tokenizing is most of a build's time."""
        todo = list(dict.fromkeys(a for a in answers if a not in self._answers))
        self._answers.update(zip(todo, self.lengths(todo)))
        return [self._answers[a] for a in answers]

    def lengths(self, texts: list[str]) -> list[int]:
        if self.tokenizer is None:
            return [len(self._UNITS.findall(t)) for t in texts]
        out = []
        for i in range(0, len(texts), 512):
            out += [len(ids) for ids in self.tokenizer(texts[i:i + 512], add_special_tokens=False)["input_ids"]]
        return out


def percentiles(values: list[int]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    return {"min": ordered[0], "p50": at(0.5), "p90": at(0.9), "p95": at(0.95), "p99": at(0.99), "max": ordered[-1],
            "mean": round(sum(ordered) / len(ordered), 1)}


def _label_counts(rec: dict) -> Iterable[str]:
    for item in rec.get("entity") or ():
        yield item.get("entity_type")
    for item in rec.get("relation") or ():
        yield item.get("relation")
    for item in rec.get("event") or ():
        yield item.get("event_type")
        for arg in item.get("arguments") or ():
            yield f"{item.get('event_type')}/{arg.get('role')}"


def file_kind(first: dict) -> str:
    if "instruction" in first and "output" in first:
        return "train"
    if "instruction" in first:
        return "test"
    if "text" in first:
        return "records"
    raise ValueError("not a record or instruction file: the first line has neither 'text' nor 'instruction'")


def file_stats(path: str | Path, counter: Optional[TokenCounter] = None) -> dict:
    """Statistics of a raw-record file or an instruction file (train or test)."""
    counter = counter or TokenCounter()
    rows = [row for _, row in read_jsonl(path)]
    if not rows:
        return {"file": str(path), "kind": "empty", "lines": 0}
    kind = file_kind(rows[0])
    out: dict = {"file": Path(path).name, "kind": kind, "lines": len(rows)}
    if kind == "records":
        labels = Counter(label for rec in rows for label in _label_counts(rec))
        out.update(records_without_labels=sum(1 for r in rows if not any(True for _ in _label_counts(r))),
                   labels=sum(labels.values()), label_distribution=dict(labels.most_common()),
                   text_tokens=percentiles(counter.lengths([r.get("text", "") for r in rows])))
        return out
    out["per_task"] = dict(sorted(Counter(r.get("task", "?") for r in rows).items()))
    out["per_source"] = dict(sorted(Counter(r.get("source", "?") for r in rows).items()))
    out["schema_items"] = percentiles([_schema_size(r["instruction"]) for r in rows])
    out["instruction_tokens"] = percentiles(counter.lengths([r["instruction"] for r in rows]))
    if kind == "train":
        output_lengths = counter.answer_lengths([r["output"] for r in rows])
        out["output_tokens"] = percentiles(output_lengths)
        out["answer_tokens_total"] = sum(output_lengths)
        out["empty_outputs"] = sum(1 for r in rows if is_empty_answer(r["output"]))
    else:
        out["records"] = len({(r.get("source"), r.get("id"), r.get("record_index")) for r in rows})
    out["tokenizer"] = counter.name
    return out


def _schema_size(instruction: str) -> int:
    return len(read_instruction(instruction)[1] or [])


def training_mix(path: Path, counter: TokenCounter) -> dict:
    """What the model learns to write: answer tokens and the share of empty answers per dataset and per task."""
    rows = [row for _, row in read_jsonl(path)]
    lengths = counter.answer_lengths([r["output"] for r in rows])
    empties = [is_empty_answer(r["output"]) for r in rows]
    total = sum(lengths)

    def summary(selected: list[int]) -> dict:
        tokens = sum(lengths[i] for i in selected)
        return {"instructions": len(selected), "answer_tokens": tokens,
                "answer_token_share": round(tokens / max(1, total), 4),
                "empty_share": round(sum(empties[i] for i in selected) / max(1, len(selected)), 4)}

    def per(key: str) -> dict:
        members: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            members.setdefault(str(row.get(key, "?")), []).append(i)
        return {name: summary(selected) for name, selected in sorted(members.items())}

    return {**summary(list(range(len(rows)))), "per_dataset": per("source"), "per_task": per("task")}


def dataset_card(spec: DatasetSpec, report: dict, work: Path, out: Path, counter: TokenCounter) -> dict:
    card: dict = {"name": spec.name, "task": spec.task, "language": spec.language, "format": spec.format,
                  "schema_sha256": report["schema_sha256"], "splits": {}}
    for split in spec.splits:
        entry = report["splits"][split]
        records = file_stats(work / f"{split}.records.json", counter)
        converted = work / "train.instructions.json" if split == "train" else out / "test" / spec.name / f"{split}.json"
        card["splits"][split] = {"read": {k: entry["import"][k] for k in ("records", "entities", "relations",
                                                                          "events", "arguments", "rejected")},
                                 "part": entry["import"].get("part"),
                                 "empty_share_cap": entry.get("empty_share_cap"),
                                 "answer_token_cap": entry.get("answer_token_cap"),
                                 "removed_by_clean": (entry["clean"] or {}).get("removed", {}),
                                 "records": records, "instructions": file_stats(converted, counter)}
    return card


def card_markdown(card: dict) -> str:
    lines = [f"# {card['name']}", "", f"- task: {card['task']}, language: {card['language']}, "
             f"format: {card['format']}", f"- schema sha256: `{card['schema_sha256']}`", ""]
    for split, entry in card["splits"].items():
        rec, ins = entry["records"], entry["instructions"]
        lines += [f"## {split}", "", f"- read: {entry['read']}",
                  f"- removed by clean: {entry['removed_by_clean'] or 'nothing'}",
                  f"- records: {rec.get('lines', 0)} ({rec.get('records_without_labels', 0)} without labels), "
                  f"labels: {rec.get('labels', 0)}",
                  f"- instructions: {ins.get('lines', 0)}; schema items per instruction: {ins.get('schema_items')}",
                  f"- text tokens: {rec.get('text_tokens')}",
                  f"- instruction tokens ({ins.get('tokenizer')}): {ins.get('instruction_tokens')}"]
        if entry.get("part"):
            lines.append(f"- part of the file: {entry['part']} (hash of dataset name and text)")
        if "output_tokens" in ins:
            lines.append(f"- answer tokens: {ins['answer_tokens_total']} (per answer {ins['output_tokens']}); "
                         f"empty answers: {ins['empty_outputs']} ({ins['empty_outputs'] / max(1, ins['lines']):.0%})")
        if entry.get("empty_share_cap"):
            cap = entry["empty_share_cap"]
            lines.append(f"- empty answers capped at {cap['max_empty_share']:.0%} of the instructions: "
                         f"{cap['empty_before']} → {cap['empty_after']} empty answers")
        if entry.get("answer_token_cap"):
            cap = entry["answer_token_cap"]
            lines.append(f"- answer-token cap {cap['cap']}: {cap['before']} → {cap['after']} tokens, "
                         f"{cap['instructions_before']} → {cap['instructions_after']} instructions")
        lines += ["", "| label | count |", "|---|---|"]
        lines += [f"| {label} | {n} |" for label, n in list(rec.get("label_distribution", {}).items())[:50]]
        lines.append("")
    return "\n".join(lines)
