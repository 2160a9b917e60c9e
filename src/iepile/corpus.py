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

from iepile.schema import Schema, load_schema

DATASET_KEYS = {"name", "format", "task", "language", "splits", "schema", "split_num", "neg_ratio", "max_neg_per_pos",
                "random_sort", "hard_negatives", "hard_negative_dataset", "max_records", "label_map", "read",
                "clean", "clean_splits"}
TOP_KEYS = {"seed", "output", "tokenizer", "clean", "datasets", "work"}


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


@dataclass
class Manifest:
    seed: int
    output: Path
    tokenizer: Optional[str]
    clean: Any
    datasets: list[DatasetSpec]
    base: Path


def load_manifest(path: str | Path) -> Manifest:
    import yaml

    path = Path(path)
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    where = str(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("datasets"), list) or not doc["datasets"]:
        raise ManifestError(f"{where}: expected a mapping with a non-empty 'datasets' list")
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise ManifestError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(TOP_KEYS)}")
    base = path.resolve().parent
    datasets, names = [], set()
    for i, item in enumerate(doc["datasets"]):
        spec = _dataset(item, base, f"{where}: datasets[{i}]")
        if spec.name in names:
            raise ManifestError(f"{where}: dataset name {spec.name!r} used twice")
        names.add(spec.name)
        datasets.append(spec)
    tokenizer = doc.get("tokenizer")
    return Manifest(seed=int(doc.get("seed", 42)), output=base / doc.get("output", "corpus"),
                    tokenizer=str(base / tokenizer) if tokenizer else None, clean=doc.get("clean", {}),
                    datasets=datasets, base=base)


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
    paths = {name: base / p for name, p in splits.items()}
    for name, p in paths.items():
        if not p.exists():
            raise ManifestError(f"{where}: split {name!r}: file not found: {p}")
    options = {k: v for k, v in item.items() if k not in ("name", "format", "task", "language", "splits")}
    for key in ("schema", "hard_negatives"):
        if options.get(key):
            options[key] = str(base / options[key])
    return DatasetSpec(str(item["name"]), item["format"], str(item["task"]).upper(), item.get("language", "en"),
                       paths, options)


# ---------------------------------------------------------------------------------------------------------------
# Small file helpers


def _lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line for line in handle if line.strip()]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def _dataset_build(spec: DatasetSpec, manifest: Manifest, work_root: Path) -> dict:
    work = work_root / spec.name
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {"name": spec.name, "format": spec.format, "task": spec.task, "language": spec.language,
                    "splits": {}}
    schemas = []
    for split, src in spec.splits.items():
        stats, schema = _import(spec, split, src, work)
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
        entry["output_sha256"] = _sha256(dst)
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
    return {"lines": len(index), "sha256": _sha256(out)}


def build(manifest_path: str | Path, output: Optional[str | Path] = None, keep_work: bool = False) -> dict:
    """Run the whole manifest; returns the combined manifest (also written to ``<output>/manifest.json``)."""
    manifest = load_manifest(manifest_path)
    if output:
        manifest.output = Path(output)
    out = manifest.output
    out.mkdir(parents=True, exist_ok=True)
    work_root = out / "_work"
    reports = [_dataset_build(spec, manifest, work_root) for spec in manifest.datasets]
    train_files = [work_root / spec.name / "train.instructions.json" for spec in manifest.datasets
                   if "train" in spec.splits]
    combined = {"seed": manifest.seed, "datasets": reports,
                "train": _shuffle_train(train_files, out / "train.json", manifest.seed)}
    cards = out / "cards"
    cards.mkdir(exist_ok=True)
    for spec, report in zip(manifest.datasets, reports):
        card = dataset_card(spec, report, work_root / spec.name, out, manifest.tokenizer)
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

    _UNITS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\s\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")

    def __init__(self, tokenizer: Optional[str] = None):
        self.name = tokenizer or "words+cjk-chars"
        self.tokenizer = None
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
        out["output_tokens"] = percentiles(counter.lengths([r["output"] for r in rows]))
        out["empty_outputs"] = sum(1 for r in rows if _empty_output(r["output"]))
    else:
        out["records"] = len({(r.get("source"), r.get("id"), r.get("record_index")) for r in rows})
    out["tokenizer"] = counter.name
    return out


def _schema_size(instruction: str) -> int:
    try:
        return len(json.loads(instruction).get("schema") or [])
    except (json.JSONDecodeError, AttributeError):
        return 0


def _empty_output(output: str) -> bool:
    """An answer with nothing extracted: every value an empty list or map (a pure negative example)."""
    try:
        value = json.loads(output)
    except json.JSONDecodeError:
        return False
    return isinstance(value, dict) and all(not v for v in value.values())


def dataset_card(spec: DatasetSpec, report: dict, work: Path, out: Path, tokenizer: Optional[str]) -> dict:
    counter = TokenCounter(tokenizer)
    card: dict = {"name": spec.name, "task": spec.task, "language": spec.language, "format": spec.format,
                  "schema_sha256": report["schema_sha256"], "splits": {}}
    for split in spec.splits:
        entry = report["splits"][split]
        records = file_stats(work / f"{split}.records.json", counter)
        converted = work / "train.instructions.json" if split == "train" else out / "test" / spec.name / f"{split}.json"
        card["splits"][split] = {"read": {k: entry["import"][k] for k in ("records", "entities", "relations",
                                                                          "events", "arguments", "rejected")},
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
        if "output_tokens" in ins:
            lines.append(f"- output tokens: {ins['output_tokens']}; empty outputs: {ins['empty_outputs']}")
        lines += ["", "| label | count |", "|---|---|"]
        lines += [f"| {label} | {n} |" for label, n in list(rec.get("label_distribution", {}).items())[:50]]
        lines.append("")
    return "\n".join(lines)
