"""The training mix of a corpus: seeded caps on records, on the share of empty answers and on answer tokens, and
the hash that cuts one labelled file into disjoint splits. Every choice is seeded by (seed, dataset, split)."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from iepile.fileio import write_text_atomic

if TYPE_CHECKING:
    from iepile.data.stats import TokenCounter

def read_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line for line in handle if line.strip()]


def seeded_rng(seed: int, *parts: str) -> random.Random:
    return random.Random(":".join([str(seed), *parts]))


def cap_lines(path: Path, limit: Optional[int], rng: random.Random) -> int:
    """Keep a seeded random sample of at most ``limit`` lines, in file order; returns the number kept."""
    lines = read_lines(path)
    if limit is None or len(lines) <= limit:
        return len(lines)
    keep = sorted(rng.sample(range(len(lines)), limit))
    write_text_atomic(path, "".join(lines[i] for i in keep))
    return limit


def text_part(dataset: str, text: str) -> float:
    """Where a record falls in [0, 1): a hash of dataset name and text (independent of seed and file order)."""
    digest = hashlib.sha256(f"{dataset}\0{text}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def keep_part(path: Path, dataset: str, part: tuple[float, float]) -> int:
    """Keep the records of ``path`` whose :func:`text_part` lies in ``[lo, hi)``; returns the number kept."""
    lo, hi = part
    kept = [line for line in read_lines(path) if lo <= text_part(dataset, json.loads(line).get("text", "")) < hi]
    write_text_atomic(path, "".join(kept))
    return len(kept)


def cap_empty_share(path: Path, share: float, rng: random.Random) -> dict:
    """Keep a seeded random subset of the empty answers (nothing to extract) so that they are at most ``share`` of
    the instructions. IEPile asks every schema group of every record, so a dataset with many labels (DuEE: 65
    event types in 16 groups) is 93 % empty answers, and a short run learns to answer nothing; dropping empty
    groups altogether (``max_neg_per_pos``) teaches the opposite, since at test time most groups are empty."""
    lines = read_lines(path)
    empty = [i for i, line in enumerate(lines) if is_empty_answer(json.loads(line)["output"])]
    filled = len(lines) - len(empty)
    limit = len(empty) if share >= 1 else int(share * filled / (1 - share))
    summary = {"max_empty_share": share, "empty_before": len(empty), "instructions_before": len(lines)}
    if len(empty) <= limit:
        return {**summary, "empty_after": len(empty), "instructions_after": len(lines)}
    dropped = set(empty) - set(rng.sample(empty, limit))
    write_text_atomic(path, "".join(line for i, line in enumerate(lines) if i not in dropped))
    return {**summary, "empty_after": limit, "instructions_after": len(lines) - len(dropped)}


def cap_answer_tokens(path: Path, cap: int, counter: "TokenCounter", rng: random.Random) -> dict:
    """Keep a seeded random subset of the training instructions whose answers sum to at most ``cap`` tokens (in
    file order). Instructions are drawn in a seeded order and kept while they fit, so the shares of empty and
    non-empty answers stay those of the whole file in expectation."""
    lines = read_lines(path)
    lengths = counter.answer_lengths([json.loads(line)["output"] for line in lines])
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
    write_text_atomic(path, "".join(lines[i] for i in keep))
    return {**summary, "after": used, "instructions_after": len(keep)}


def is_empty_answer(output: str) -> bool:
    """An answer with nothing extracted: every value an empty list or map (a pure negative example)."""
    try:
        value = json.loads(output)
    except json.JSONDecodeError:
        return False
    return isinstance(value, dict) and all(not v for v in value.values())
