"""``iepile build corpus.yaml`` and ``iepile stats FILE``: from dataset files to one training corpus.

A manifest lists datasets (files per split, format, task, language, conversion and negative options, hard-negative
dictionary, sampling caps). ``build`` imports, cleans (train splits by default) and converts each dataset, then writes
one shuffled ``train.json``, one test file per dataset and split (``test/<dataset>/<split>.json``), a combined
``manifest.json`` and a dataset card per dataset (``cards/<dataset>.md`` and ``.json``). Same manifest and seed →
byte-identical outputs: every random choice comes from a ``random.Random`` seeded with a string built from the seed,
the dataset and the split, and nothing time- or machine-dependent is written.

Manifest (YAML; paths are relative to the manifest file)::

    seed: 42
    output: build/corpus
    tokenizer: null            # a local HF tokenizer folder for token-length percentiles (default: word/char count)
    clean: {}                  # default clean options for every dataset (false: no cleaning)
    datasets:
      - name: CoNLL2003
        format: conll
        task: NER
        language: en
        splits: {train: data/train.txt, dev: data/dev.txt, test: data/test.txt}
        split_num: 6
        neg_ratio: 1.0
        hard_negatives: hard_dict.json
        max_records: {train: 5000}
        label_map: {organisation: organization}
        read: {no_relation: [unknown]}
        answer_tokens: 60000     # this dataset's cap on training answer tokens (null: no cap)
      - name: DuEE1.0           # a dataset with one labelled file: disjoint parts of it as splits
        splits: {train: {file: duee/dev.json, part: [0.0, 0.7]}, test: {file: duee/dev.json, part: [0.7, 1.0]}}
    balance: {answer_tokens: 120000, max_empty_share: 0.3}   # defaults for every dataset's training split

Balancing is by **answer tokens**, not records: a dataset whose answers are long (event extraction: every role of
every event) would otherwise make most of what the model learns to write, and a dataset with short answers would
hardly be learnt. A dataset over its cap keeps a seeded random subset of its training instructions whose answers
fit the cap (so its share of empty answers stays what it was). Before that, ``max_empty_share`` drops a seeded
subset of the empty answers (instructions with nothing to extract) down to that share. The manifest and the cards
state the tokens before and after, the share of empty answers, and the mix per dataset and task. Tokens are those of ``tokenizer``
(``default``: the default model's), else words and CJK characters.

A split given as ``{file, part: [lo, hi]}`` keeps the records whose hash of (dataset name, text) falls in
``[lo, hi)``: parts of one file are disjoint, do not depend on the seed or the order of the file, and a text that
occurs twice is always on one side.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from iepile.fileio import sha256_file
from iepile.instructions import read_instruction
from iepile.schema import Schema, load_schema
from iepile.text import CJK_CLASS

DATASET_KEYS = {"name", "format", "task", "language", "splits", "schema", "split_num", "neg_ratio", "max_neg_per_pos",
                "random_sort", "hard_negatives", "hard_negative_dataset", "max_records", "label_map", "read",
                "clean", "clean_splits", "answer_tokens", "max_empty_share"}
TOP_KEYS = {"seed", "output", "tokenizer", "clean", "datasets", "work", "balance"}
BALANCE_KEYS = {"answer_tokens", "max_empty_share"}


class ManifestError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------------------------
# Manifest


@dataclass
class DatasetSpec:
    name: str
    format: str
    task: str
    language: str
    splits: dict[str, Path]
    options: dict = field(default_factory=dict)
    parts: dict[str, tuple[float, float]] = field(default_factory=dict)  # split → [lo, hi) of the text hash


@dataclass
class Manifest:
    seed: int
    output: Path
    tokenizer: Optional[str]
    clean: Any
    datasets: list[DatasetSpec]
    base: Path
    balance: dict = field(default_factory=dict)

    def balance_setting(self, spec: DatasetSpec, key: str) -> Any:
        """The dataset's own ``answer_tokens`` / ``max_empty_share`` (null: no cap), else the ``balance`` default."""
        return spec.options[key] if key in spec.options else self.balance.get(key)


def load_manifest(path: str | Path) -> Manifest:
    import yaml

    path = Path(path)
    return parse_manifest(yaml.safe_load(path.read_text(encoding="utf-8")) or {}, path.resolve().parent, str(path))


def parse_manifest(doc: Any, base: Path, where: str) -> Manifest:
    """A manifest from its parsed YAML; relative paths are relative to ``base``, errors name ``where``."""
    if not isinstance(doc, dict) or not isinstance(doc.get("datasets"), list) or not doc["datasets"]:
        raise ManifestError(f"{where}: expected a mapping with a non-empty 'datasets' list")
    unknown = {key for key in set(doc) - TOP_KEYS if not str(key).startswith("x-")}  # x-: YAML anchor holders
    if unknown:
        raise ManifestError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(TOP_KEYS)}")
    datasets, names = [], set()
    for i, item in enumerate(doc["datasets"]):
        spec = _dataset(item, base, f"{where}: datasets[{i}]")
        if spec.name in names:
            raise ManifestError(f"{where}: dataset name {spec.name!r} used twice")
        names.add(spec.name)
        datasets.append(spec)
    tokenizer = doc.get("tokenizer")
    if tokenizer and tokenizer != "default":
        tokenizer = str(base / tokenizer)
    balance = doc.get("balance") or {}
    if not isinstance(balance, dict) or set(balance) - BALANCE_KEYS:
        raise ManifestError(f"{where}: balance must be a mapping with key(s) {sorted(BALANCE_KEYS)}")
    manifest = Manifest(seed=int(doc.get("seed", 42)), output=base / doc.get("output", "corpus"),
                        tokenizer=tokenizer or None, clean=doc.get("clean", {}), datasets=datasets, base=base,
                        balance=balance)
    for spec in datasets:
        cap, share = (manifest.balance_setting(spec, k) for k in ("answer_tokens", "max_empty_share"))
        if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
            raise ManifestError(f"{where}: dataset {spec.name}: answer_tokens must be a positive integer or null, "
                                f"not {cap!r}")
        if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float))
                                  or not 0 <= share <= 1):
            raise ManifestError(f"{where}: dataset {spec.name}: max_empty_share must be a number in [0, 1] or "
                                f"null, not {share!r}")
    return manifest


def _dataset(item: Any, base: Path, where: str) -> DatasetSpec:
    if not isinstance(item, dict):
        raise ManifestError(f"{where}: expected a mapping")
    unknown = set(item) - DATASET_KEYS
    if unknown:
        raise ManifestError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(DATASET_KEYS)}")
    for key in ("name", "format", "task", "splits"):
        if key not in item:
            raise ManifestError(f"{where}: missing {key!r}")
    if not re.fullmatch(r"[\w.\-]+", str(item["name"])):
        raise ManifestError(f"{where}: name must be letters, digits, '.', '-' or '_' (it names files)")
    splits = item["splits"]
    if not isinstance(splits, dict) or not splits:
        raise ManifestError(f"{where}: splits must map split names to files")
    paths, parts = {}, {}
    for name, value in splits.items():
        paths[name], part = _split_source(value, f"{where}: split {name!r}")
        if part:
            parts[name] = part
        if not (base / paths[name]).exists():
            raise ManifestError(f"{where}: split {name!r}: file not found: {base / paths[name]}")
        paths[name] = base / paths[name]
    _check_disjoint(paths, parts, where)
    options = {k: v for k, v in item.items() if k not in ("name", "format", "task", "language", "splits")}
    for key in ("schema", "hard_negatives"):
        if options.get(key):
            options[key] = str(base / options[key])
    return DatasetSpec(str(item["name"]), item["format"], str(item["task"]).upper(), item.get("language", "en"),
                       paths, options, parts)


def _split_source(value: Any, where: str) -> tuple[str, Optional[tuple[float, float]]]:
    """A split's file, and its ``part`` when it is given as ``{file, part: [lo, hi]}``."""
    if isinstance(value, (str, Path)):
        return str(value), None
    if not isinstance(value, dict) or set(value) != {"file", "part"}:
        raise ManifestError(f"{where}: expected a file name or a mapping {{file, part: [lo, hi]}}")
    part = value["part"]
    if (not isinstance(part, list) or len(part) != 2 or not all(isinstance(x, (int, float)) for x in part)
            or not 0 <= part[0] < part[1] <= 1):
        raise ManifestError(f"{where}: part must be [lo, hi] with 0 <= lo < hi <= 1, not {part!r}")
    return str(value["file"]), (float(part[0]), float(part[1]))


def _check_disjoint(paths: dict[str, Path], parts: dict[str, tuple[float, float]], where: str) -> None:
    """Two splits read from one file must take disjoint parts of it (else test records leak into train)."""
    names = list(paths)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if paths[a].resolve() != paths[b].resolve():
                continue
            pa, pb = parts.get(a, (0.0, 1.0)), parts.get(b, (0.0, 1.0))
            if pa[0] < pb[1] and pb[0] < pa[1]:
                raise ManifestError(f"{where}: splits {a!r} and {b!r} read overlapping parts of {paths[a]}")


# ---------------------------------------------------------------------------------------------------------------
# Small file helpers


def _lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line for line in handle if line.strip()]


def _rng(seed: int, *parts: str) -> random.Random:
    return random.Random(":".join([str(seed), *parts]))


def _cap(path: Path, limit: Optional[int], rng: random.Random) -> int:
    """Keep a seeded random sample of at most ``limit`` lines, in file order; returns the number kept."""
    lines = _lines(path)
    if limit is None or len(lines) <= limit:
        return len(lines)
    keep = sorted(rng.sample(range(len(lines)), limit))
    path.write_text("".join(lines[i] for i in keep), encoding="utf-8")
    return limit


def text_part(dataset: str, text: str) -> float:
    """Where a record falls in [0, 1): a hash of dataset name and text (independent of seed and file order)."""
    digest = hashlib.sha256(f"{dataset}\0{text}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def _keep_part(path: Path, dataset: str, part: tuple[float, float]) -> int:
    """Keep the records of ``path`` whose :func:`text_part` lies in ``[lo, hi)``; returns the number kept."""
    lo, hi = part
    kept = [line for line in _lines(path) if lo <= text_part(dataset, json.loads(line).get("text", "")) < hi]
    path.write_text("".join(kept), encoding="utf-8")
    return len(kept)


def _cap_empty_share(path: Path, share: float, rng: random.Random) -> dict:
    """Keep a seeded random subset of the empty answers (nothing to extract) so that they are at most ``share`` of
    the instructions. IEPile asks every schema group of every record, so a dataset with many labels (DuEE: 65
    event types in 16 groups) is 93 % empty answers, and a short run learns to answer nothing; dropping empty
    groups altogether (``max_neg_per_pos``) teaches the opposite, since at test time most groups are empty."""
    lines = _lines(path)
    empty = [i for i, line in enumerate(lines) if _empty_output(json.loads(line)["output"])]
    filled = len(lines) - len(empty)
    limit = len(empty) if share >= 1 else int(share * filled / (1 - share))
    summary = {"max_empty_share": share, "empty_before": len(empty), "instructions_before": len(lines)}
    if len(empty) <= limit:
        return {**summary, "empty_after": len(empty), "instructions_after": len(lines)}
    dropped = set(empty) - set(rng.sample(empty, limit))
    path.write_text("".join(line for i, line in enumerate(lines) if i not in dropped), encoding="utf-8")
    return {**summary, "empty_after": limit, "instructions_after": len(lines) - len(dropped)}


def _cap_answer_tokens(path: Path, cap: int, counter: "TokenCounter", rng: random.Random) -> dict:
    """Keep a seeded random subset of the training instructions whose answers sum to at most ``cap`` tokens (in
    file order). Instructions are drawn in a seeded order and kept while they fit, so the shares of empty and
    non-empty answers stay those of the whole file in expectation."""
    lines = _lines(path)
    lengths = counter.lengths([json.loads(line)["output"] for line in lines])
    total = sum(lengths)
    summary = {"cap": cap, "before": total, "instructions_before": len(lines)}
    if total <= cap:
        return {**summary, "after": total, "instructions_after": len(lines)}
    order = list(range(len(lines)))
    rng.shuffle(order)
    keep, used = [], 0
    for i in order:
        if used + lengths[i] <= cap:
            keep.append(i)
            used += lengths[i]
    keep.sort()
    path.write_text("".join(lines[i] for i in keep), encoding="utf-8")
    return {**summary, "after": used, "instructions_after": len(keep)}


def merge_schemas(schemas: Iterable[Schema]) -> Schema:
    """Union of split schemas, labels in order of first appearance (each split's labels are sorted)."""
    types, roles, type_roles = [], [], {}
    for schema in schemas:
        types += schema.type_list
        roles += schema.role_list
        for t, rs in schema.type_role_dict.items():
            type_roles.setdefault(t, [])
            type_roles[t] += [r for r in rs if r not in type_roles[t]]
    return Schema(types, roles, type_roles)


# ---------------------------------------------------------------------------------------------------------------
# Build


def _import(spec: DatasetSpec, split: str, src: Path, work: Path) -> tuple[dict, Schema]:
    from iepile.formats import import_file
    from iepile.formats.base import ReadOptions

    read = dict(spec.options.get("read") or {})
    if "no_relation" in read:
        read["no_relation"] = tuple(read["no_relation"])
    opts = ReadOptions(task=spec.task, language=spec.language, **read)
    out = work / f"{split}.records.json"
    stats = import_file(src, out, spec.format, opts, schema_out=work / f"{split}.schema.json",
                        label_map=spec.options.get("label_map"))
    stats = {k: v for k, v in stats.items() if k not in ("path", "output", "schema")}
    stats["input"] = src.name
    return stats, load_schema(work / f"{split}.schema.json")


def _clean(spec: DatasetSpec, split: str, manifest: Manifest, work: Path) -> Optional[dict]:
    from iepile.clean import CleanOptions, clean_file

    settings = spec.options.get("clean", manifest.clean)
    if settings is False or split not in spec.options.get("clean_splits", ["train"]):
        return None
    settings = dict(settings or {})
    if "rules" in settings:
        settings["rules"] = tuple(settings["rules"])
    src, dst = work / f"{split}.records.json", work / f"{split}.clean.json"
    summary = clean_file(src, dst, CleanOptions(seed=manifest.seed, **settings),
                         report=work / f"{split}.removed.jsonl")
    shutil.move(dst, src)
    return {k: v for k, v in summary.items() if k not in ("input", "output", "report")}


def _convert(spec: DatasetSpec, split: str, src: Path, dst: Path, schema_path: Path, seed: int) -> dict:
    from iepile.convert import ConvertOptions, convert_file

    o = spec.options
    options = ConvertOptions(task=spec.task, language=spec.language, schema_path=str(schema_path),
                             split="train" if split == "train" else "test", source=spec.name,
                             split_num=o.get("split_num"), neg_ratio=float(o.get("neg_ratio", 1.0)),
                             max_neg_per_pos=o.get("max_neg_per_pos"), random_sort=bool(o.get("random_sort")),
                             hard_negatives=o.get("hard_negatives"),
                             hard_negative_dataset=o.get("hard_negative_dataset"), seed=seed, workers=1,
                             on_error="fail")
    if hasattr(options, "progress"):
        options.progress = False
    result = convert_file(src, dst, options)
    for sidecar in (Path(f"{dst}.manifest.json"), Path(f"{dst}.rejects.jsonl")):
        if sidecar.exists():  # its content is in the combined manifest; its absolute paths are not reproducible
            sidecar.unlink()
    return result.get("statistics", result)


def _balance(spec: DatasetSpec, manifest: Manifest, path: Path, counter: "TokenCounter") -> dict:
    """The training instructions' caps, empty share first (then the token cap keeps that share)."""
    report = {}
    share = manifest.balance_setting(spec, "max_empty_share")
    if share is not None:
        report["empty_share_cap"] = _cap_empty_share(path, float(share), _rng(manifest.seed, spec.name, "empty"))
    cap = manifest.balance_setting(spec, "answer_tokens")
    if cap is not None:
        report["answer_token_cap"] = _cap_answer_tokens(path, int(cap), counter,
                                                        _rng(manifest.seed, spec.name, "answer-tokens"))
    return report


def _dataset_build(spec: DatasetSpec, manifest: Manifest, work_root: Path, counter: "TokenCounter") -> dict:
    work = work_root / spec.name
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {"name": spec.name, "format": spec.format, "task": spec.task, "language": spec.language,
                    "splits": {}}
    schemas = []
    for split, src in spec.splits.items():
        stats, schema = _import(spec, split, src, work)
        if split in spec.parts:
            stats["part"] = list(spec.parts[split])
            stats["records_in_part"] = _keep_part(work / f"{split}.records.json", spec.name, spec.parts[split])
        report["splits"][split] = {"import": stats}
        schemas.append(schema)
    schema = load_schema(spec.options["schema"]) if spec.options.get("schema") else merge_schemas(schemas)
    schema_path = work / "schema.json"
    schema_path.write_text(schema.to_lines(), encoding="utf-8")
    caps = spec.options.get("max_records") or {}
    for split in spec.splits:
        entry = report["splits"][split]
        entry["clean"] = _clean(spec, split, manifest, work)
        entry["records"] = _cap(work / f"{split}.records.json", caps.get(split),
                                _rng(manifest.seed, spec.name, split))
        if split == "train":
            dst = work / "train.instructions.json"
        else:
            dst = manifest.output / "test" / spec.name / f"{split}.json"
            dst.parent.mkdir(parents=True, exist_ok=True)
        entry["convert"] = _convert(spec, split, work / f"{split}.records.json", dst, schema_path, manifest.seed)
        if split == "train":
            entry.update(_balance(spec, manifest, dst, counter))
        entry["output_sha256"] = sha256_file(dst)
    report["schema_sha256"] = hashlib.sha256(schema.to_lines().encode()).hexdigest()
    return report


def _shuffle_train(files: list[Path], out: Path, seed: int) -> dict:
    """All training lines of all datasets in one seeded random order (line offsets are shuffled, not the lines, so
    only the offsets are held in memory)."""
    index = []
    for number, path in enumerate(files):
        with open(path, "rb") as handle:
            pos = 0
            for line in handle:
                if line.strip():
                    index.append((number, pos, len(line)))
                pos += len(line)
    _rng(seed, "train-shuffle").shuffle(index)
    handles = [open(p, "rb") for p in files]
    try:
        with open(out, "wb") as dst:
            for number, pos, size in index:
                handles[number].seek(pos)
                line = handles[number].read(size)
                dst.write(line if line.endswith(b"\n") else line + b"\n")
    finally:
        for handle in handles:
            handle.close()
    return {"lines": len(index), "sha256": sha256_file(out)}


def build(manifest: str | Path | Manifest, output: Optional[str | Path] = None, keep_work: bool = False) -> dict:
    """Run the whole manifest (a file or a parsed :class:`Manifest`); returns the combined manifest (also written to
    ``<output>/manifest.json``)."""
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    if output:
        manifest.output = Path(output)
    out = manifest.output
    out.mkdir(parents=True, exist_ok=True)
    work_root = out / "_work"
    counter = TokenCounter(manifest.tokenizer)
    reports = [_dataset_build(spec, manifest, work_root, counter) for spec in manifest.datasets]
    train_files = [work_root / spec.name / "train.instructions.json" for spec in manifest.datasets
                   if "train" in spec.splits]
    combined = {"seed": manifest.seed, "balance": manifest.balance, "tokenizer": counter.name, "datasets": reports,
                "train": _shuffle_train(train_files, out / "train.json", manifest.seed)}
    combined["train"]["mix"] = training_mix(out / "train.json", counter)
    cards = out / "cards"
    cards.mkdir(exist_ok=True)
    for spec, report in zip(manifest.datasets, reports):
        card = dataset_card(spec, report, work_root / spec.name, out, counter)
        (cards / f"{spec.name}.json").write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n",
                                                  encoding="utf-8")
        (cards / f"{spec.name}.md").write_text(card_markdown(card), encoding="utf-8")
    (out / "manifest.json").write_text(json.dumps(combined, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if not keep_work:
        shutil.rmtree(work_root)
    return combined


# ---------------------------------------------------------------------------------------------------------------
# Statistics (stats command and dataset cards)


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
    rows = [json.loads(line) for line in _lines(Path(path))]
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
        output_lengths = counter.lengths([r["output"] for r in rows])
        out["output_tokens"] = percentiles(output_lengths)
        out["answer_tokens_total"] = sum(output_lengths)
        out["empty_outputs"] = sum(1 for r in rows if _empty_output(r["output"]))
    else:
        out["records"] = len({(r.get("source"), r.get("id"), r.get("record_index")) for r in rows})
    out["tokenizer"] = counter.name
    return out


def _schema_size(instruction: str) -> int:
    return len(read_instruction(instruction)[1] or [])


def _empty_output(output: str) -> bool:
    """An answer with nothing extracted: every value an empty list or map (a pure negative example)."""
    try:
        value = json.loads(output)
    except json.JSONDecodeError:
        return False
    return isinstance(value, dict) and all(not v for v in value.values())


def training_mix(path: Path, counter: TokenCounter) -> dict:
    """What the model learns to write: answer tokens and the share of empty answers per dataset and per task."""
    rows = [json.loads(line) for line in _lines(path)]
    lengths = counter.lengths([r["output"] for r in rows])
    empties = [_empty_output(r["output"]) for r in rows]
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
