"""A recipe manifest: read, checked, overridden (``--set STEP.KEY=VALUE``), and the key that caches a step."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Optional

DEFAULT_DATA = "../../shared/data"  # relative to the recipe's folder (recipes/ in the repository: ../shared/data)
STEP_KINDS = ("build", "train", "sample", "tune", "predict", "report")


class RecipeError(ValueError):
    pass


def _parse_value(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def _apply_set(doc: dict, dotted: str, value: Any) -> None:
    """``train.config.max_steps`` → the step named ``train``; a first part that is not a step name is a top key."""
    parts = dotted.split(".")
    steps = {step.get("name"): step for step in doc.get("steps", [])}
    target = steps[parts[0]] if parts[0] in steps and len(parts) > 1 else doc
    keys = parts[1:] if target is not doc else parts
    for key in keys[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    target[keys[-1]] = value


def load_recipe(path: str | os.PathLike, settings: Optional[dict[str, Any]] = None) -> dict:
    import yaml

    path = Path(path)
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list) or not doc["steps"]:
        raise RecipeError(f"{path}: expected a mapping with a non-empty 'steps' list")
    names = set()
    for i, step in enumerate(doc["steps"]):
        if not isinstance(step, dict) or "name" not in step or step.get("kind") not in STEP_KINDS:
            raise RecipeError(f"{path}: steps[{i}] needs a name and a kind in {STEP_KINDS}")
        if step["name"] in names:
            raise RecipeError(f"{path}: step name {step['name']!r} used twice")
        names.add(step["name"])
    for dotted, value in (settings or {}).items():
        _apply_set(doc, dotted, value)
    doc.setdefault("name", path.stem)
    doc["_path"] = str(path.resolve())
    return doc


def step_key(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()[:16]


def scaled(value: Optional[int], scale: float) -> Optional[int]:
    if value is None or value < 0:
        return value
    return max(1, int(math.ceil(value * scale)))


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    settings = {}
    for pair in pairs:
        if "=" not in pair:
            raise RecipeError(f"--set expects STEP.KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        settings[key.strip()] = _parse_value(value)
    return settings


def corpus_document(step: dict, manifest_path: Path, data: Path, seed: int, output: Path) -> dict:
    """A build step's corpus manifest as a document for :func:`iepile.data.manifest.parse_manifest`: the step's
    ``datasets`` subset, ``all`` and ``overrides`` applied (``null`` removes a key), every data path the manifest
    writes under ``manifest_data_root`` moved under ``data`` (``${data}/...`` too), and the step's ``clean``,
    ``tokenizer`` and ``balance``."""
    import yaml

    doc = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
    base = manifest_path.parent
    written_root = (base / step.get("manifest_data_root", "../../shared/data")).resolve()
    keep = step.get("datasets")
    datasets = []
    for item in doc["datasets"]:
        if keep and item["name"] not in keep:
            continue
        item = dict(item)
        for k, v in {**(step.get("all") or {}), **((step.get("overrides") or {}).get(item["name"]) or {})}.items():
            if v is None:
                item.pop(k, None)
            else:
                item[k] = v
        item["splits"] = {s: _split_path(base, p, written_root, data) for s, p in item["splits"].items()}
        for k in ("schema", "hard_negatives"):
            if item.get(k):
                item[k] = _data_path(base, item[k], written_root, data)
        datasets.append(item)
    if keep and len(datasets) != len(keep):
        raise RecipeError(f"step {step['name']!r}: datasets {keep} not all in {manifest_path}")
    doc = {**doc, "datasets": datasets, "output": str(output), "seed": seed}
    if "clean" in step:
        doc["clean"] = step["clean"]
    if "tokenizer" in step:
        doc["tokenizer"] = step["tokenizer"]
    elif doc.get("tokenizer") and doc["tokenizer"] != "default":
        doc["tokenizer"] = str((base / doc["tokenizer"]).resolve())
    if "balance" in step:
        doc["balance"] = step["balance"]
    return doc


def _split_path(base: Path, value: Any, written_root: Path, data: Path) -> Any:
    if isinstance(value, dict):  # {file, part}
        return {**value, "file": _data_path(base, value["file"], written_root, data)}
    return _data_path(base, value, written_root, data)


def _data_path(base: Path, value: str, written_root: Path, data: Path) -> str:
    if str(value).startswith("${data}"):
        return str(data / str(value)[len("${data}"):].lstrip("/"))
    path = (base / value).resolve()
    try:
        return str(data / path.relative_to(written_root))
    except ValueError:
        return str(path)


def per_dataset(setting: Any, dataset: str) -> Any:
    """A setting given as one value for every dataset or as a mapping ``{dataset: v, "*": v}`` (``*`` for the rest):
    sample caps (a dataset asking many instructions a record, DuEE's 16 schema groups, sampled smaller) and tuned
    thresholds."""
    if isinstance(setting, dict):
        return setting.get(dataset, setting.get("*"))
    return setting
