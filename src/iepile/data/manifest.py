"""A corpus manifest (``iepile build corpus.yaml``): datasets, their files per split, options and caps, checked
with errors that name the manifest and the key. The format is described in :mod:`iepile.data.corpus`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

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
