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
import shutil
from pathlib import Path
from typing import Iterable, Optional

from iepile.data.balance import cap_answer_tokens, cap_empty_share, cap_lines, keep_part, seeded_rng
from iepile.data.manifest import DatasetSpec, Manifest, load_manifest
from iepile.data.stats import TokenCounter, card_markdown, dataset_card, training_mix
from iepile.fileio import atomic_output, sha256_file, write_text_atomic
from iepile.schema import Schema, load_schema


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
    from iepile.data.formats import import_file
    from iepile.data.formats.base import ReadOptions

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
    from iepile.data.clean import CleanOptions, clean_file

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
        report["empty_share_cap"] = cap_empty_share(path, float(share), seeded_rng(manifest.seed, spec.name, "empty"))
    cap = manifest.balance_setting(spec, "answer_tokens")
    if cap is not None:
        report["answer_token_cap"] = cap_answer_tokens(path, int(cap), counter,
                                                        seeded_rng(manifest.seed, spec.name, "answer-tokens"))
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
            stats["records_in_part"] = keep_part(work / f"{split}.records.json", spec.name, spec.parts[split])
        report["splits"][split] = {"import": stats}
        schemas.append(schema)
    schema = load_schema(spec.options["schema"]) if spec.options.get("schema") else merge_schemas(schemas)
    schema_path = work / "schema.json"
    write_text_atomic(schema_path, schema.to_lines())
    caps = spec.options.get("max_records") or {}
    for split in spec.splits:
        entry = report["splits"][split]
        entry["clean"] = _clean(spec, split, manifest, work)
        entry["records"] = cap_lines(work / f"{split}.records.json", caps.get(split),
                                seeded_rng(manifest.seed, spec.name, split))
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
    seeded_rng(seed, "train-shuffle").shuffle(index)
    handles = [open(p, "rb") for p in files]
    try:
        with atomic_output(out) as tmp, open(tmp, "wb") as dst:
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
        write_text_atomic(cards / f"{spec.name}.json", json.dumps(card, ensure_ascii=False, indent=2) + "\n")
        write_text_atomic(cards / f"{spec.name}.md", card_markdown(card))
    write_text_atomic(out / "manifest.json", json.dumps(combined, ensure_ascii=False, indent=2) + "\n")
    if not keep_work:
        shutil.rmtree(work_root)
    return combined


