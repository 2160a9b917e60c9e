"""``iepile clean``: the IEPile paper's three quality rules, exact de-duplication with conflict handling, and optional
near-duplicate removal — with a report line for every removed record, naming the rule that removed it.

Rules (each threshold configurable):
* ``non_letter``: more than 80% of the non-space characters are not letters (``str.isalpha``: any script);
* ``too_short``: the text has fewer than 5 characters and the record has no labels;
* ``stopwords``: more than 80% of the words are stopwords (English and Chinese lists shipped in
  ``iepile/resources``; Chinese is segmented with jieba).

De-duplication is by exact text among the records that pass the rules. Records sharing a text but not their labels
(compared without offsets, in any order) are *conflicts*: keep the first (default), merge all labels into the first,
or drop them all. The input is read in two passes (three with ``merge``) so memory holds one small entry per record
rather than the records themselves.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterator, Optional

from iepile.config import check_ranges, opt
from iepile.records import RecordError, dumps
from iepile.fileio import atomic_output, naming_outputs, refuse_input_as_output
from iepile.text import has_cjk

LABEL_KEYS = ("entity", "relation", "event")
OFFSET_KEYS = {"start", "end", "head_start", "head_end", "tail_start", "tail_end", "trigger_start", "trigger_end"}
CONFLICT_MODES = ("keep-first", "merge", "drop")


@dataclass
class CleanOptions:
    """Every setting of ``iepile clean`` (the command is built from these fields) and of a manifest's ``clean``."""

    non_letter_ratio: float = opt(0.8, "non_letter rule: drop a record when more than this share of its visible "
                                  "characters are not letters (CJK characters are letters).", min=0, max=1)
    min_length: int = opt(5, "too_short rule: drop a record with fewer characters and no labels.", min=0)
    stopword_ratio: float = opt(0.8, "stopwords rule: drop a record whose words are more than this share "
                                "stopwords.", min=0, max=1)
    rules: list[str] = opt(help="Comma-separated rules to apply: non_letter, too_short, stopwords.",
                           factory=lambda: ["non_letter", "too_short", "stopwords"])
    dedup: bool = opt(True, "Exact de-duplication by text.", flag="--dedup/--no-dedup")
    on_conflict: str = opt("keep-first", "Same text, different labels: keep-first, merge or drop.")
    near_dup: Optional[float] = opt(None, "Also remove near duplicates at this character 5-gram Jaccard similarity "
                                    "(e.g. 0.9).")
    on_error: str = opt("fail", "fail at the first bad record, or skip and count it.")
    seed: int = opt(42, "Seed of the near-duplicate hashing.")

    def validate(self) -> None:
        check_ranges(self)
        if self.on_error not in ("fail", "skip"):
            raise ValueError(f"--on-error must be fail or skip, got {self.on_error!r}")
        if self.on_conflict not in CONFLICT_MODES:
            raise ValueError(f"on_conflict must be one of {', '.join(CONFLICT_MODES)}")
        unknown = set(self.rules) - {"non_letter", "too_short", "stopwords"}
        if unknown:
            raise ValueError(f"unknown rule(s) {sorted(unknown)}; rules are non_letter, too_short, stopwords")
        if self.near_dup is not None and not 0 < self.near_dup <= 1:
            raise ValueError("near_dup must be a Jaccard threshold in (0, 1]")


# ---------------------------------------------------------------------------------------------------------------
# The three rules


@lru_cache(maxsize=None)
def stopwords() -> frozenset[str]:
    words: set[str] = set()
    for name in ("stopwords_en.txt", "stopwords_zh.txt"):
        text = resources.files("iepile.resources").joinpath(name).read_text(encoding="utf-8")
        words.update(w.strip().lower() for w in text.splitlines() if w.strip())
    return frozenset(words)


_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def words(text: str) -> list[str]:
    """Words of a text: jieba segmentation when it holds Chinese, else letter/digit runs; punctuation is not a
    word (so it neither counts as a stopword nor dilutes the ratio)."""
    if has_cjk(text):
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        return [w for w in jieba.lcut(text) if any(c.isalnum() for c in w)]
    return _WORD.findall(text)


def label_count(rec: dict) -> int:
    return sum(len(rec.get(key) or ()) for key in LABEL_KEYS)


def non_letter_ratio(text: str) -> float:
    visible = len(text) - sum(map(str.isspace, text))
    return 1.0 if not visible else (visible - sum(map(str.isalpha, text))) / visible


def stopword_ratio(text: str) -> float:
    found = words(text)
    if not found:
        return 0.0
    stop = stopwords()
    return sum(w.lower() in stop for w in found) / len(found)


def rule_verdict(rec: dict, opts: CleanOptions) -> Optional[tuple[str, str]]:
    """(rule, detail) of the first rule that removes the record, or None when it stays."""
    text = rec.get("text", "")
    if "non_letter" in opts.rules:
        ratio = non_letter_ratio(text)
        if ratio > opts.non_letter_ratio:
            return "non_letter", f"{ratio:.2f} of the characters are not letters"
    if "too_short" in opts.rules and len(text.strip()) < opts.min_length and not label_count(rec):
        return "too_short", f"{len(text.strip())} characters and no labels"
    if "stopwords" in opts.rules:
        ratio = stopword_ratio(text)
        if ratio > opts.stopword_ratio:
            return "stopwords", f"{ratio:.2f} of the words are stopwords"
    return None


# ---------------------------------------------------------------------------------------------------------------
# Labels: comparison and merging


def _strip_offsets(value):
    if isinstance(value, dict):
        return {k: _strip_offsets(v) for k, v in value.items() if k not in OFFSET_KEYS}
    if isinstance(value, list):
        return [_strip_offsets(v) for v in value]
    return value


def label_items(rec: dict) -> list:
    return [item for key in LABEL_KEYS for item in (rec.get(key) or ())]


def labels_digest(rec: dict) -> bytes:
    """Order- and offset-insensitive fingerprint of a record's labels."""
    items = sorted(json.dumps(_strip_offsets(item), sort_keys=True, ensure_ascii=False) for item in label_items(rec))
    return hashlib.blake2b("\n".join(items).encode(), digest_size=12).digest()


def text_digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def merge_labels(first: dict, others: list[dict]) -> dict:
    """The first record with the union of all labels (first occurrence order, compared without offsets)."""
    merged = dict(first)
    for key in LABEL_KEYS:
        if not any(key in r for r in [first, *others]):
            continue
        seen, items = set(), []
        for r in [first, *others]:
            for item in r.get(key) or ():
                fingerprint = json.dumps(_strip_offsets(item), sort_keys=True, ensure_ascii=False)
                if fingerprint not in seen:
                    seen.add(fingerprint)
                    items.append(item)
        merged[key] = items
    return merged


# ---------------------------------------------------------------------------------------------------------------
# Near duplicates: MinHash over character 5-grams with LSH banding


class NearDupIndex:
    """Finds an earlier kept text whose estimated Jaccard similarity (character n-grams) reaches ``threshold``.
    Signatures are 128 uint32 MinHash values; 32 bands of 4 rows give candidates down to a similarity of about 0.42,
    each then checked on its signature."""

    def __init__(self, threshold: float, seed: int = 42, num_perm: int = 128, bands: int = 32, ngram: int = 5):
        import numpy as np

        self.np, self.threshold, self.ngram, self.bands = np, threshold, ngram, bands
        rng = np.random.default_rng(seed)
        self.prime = np.uint64(4294967291)
        self.a = rng.integers(1, 2 ** 31, size=num_perm, dtype=np.uint64)
        self.b = rng.integers(0, 2 ** 31, size=num_perm, dtype=np.uint64)
        self.rows = num_perm // bands
        self.buckets: list[dict[bytes, list[int]]] = [{} for _ in range(bands)]
        self.signatures: list = []
        self.keys: list = []

    def signature(self, text: str):
        np = self.np
        text = re.sub(r"\s+", " ", text.strip().lower())
        grams = {text[i:i + self.ngram] for i in range(max(1, len(text) - self.ngram + 1))}
        hashes = np.fromiter((zlib.crc32(g.encode("utf-8")) for g in grams), dtype=np.uint64, count=len(grams))
        return ((np.outer(hashes, self.a) + self.b) % self.prime).min(axis=0).astype(np.uint32)

    def query_add(self, text: str, key) -> Optional[tuple[object, float]]:
        """The key and similarity of a near duplicate already indexed; otherwise index this text and return None."""
        sig = self.signature(text)
        bands = [sig[i * self.rows:(i + 1) * self.rows].tobytes() for i in range(self.bands)]
        best: Optional[tuple[object, float]] = None
        seen: set[int] = set()
        for bucket, band in zip(self.buckets, bands):
            for doc in bucket.get(band, ()):
                if doc in seen:
                    continue
                seen.add(doc)
                similarity = float((self.signatures[doc] == sig).mean())
                if similarity >= self.threshold and (best is None or similarity > best[1]):
                    best = (self.keys[doc], similarity)
        if best is not None:
            return best
        doc = len(self.signatures)
        self.signatures.append(sig)
        self.keys.append(key)
        for bucket, band in zip(self.buckets, bands):
            bucket.setdefault(band, []).append(doc)
        return None


# ---------------------------------------------------------------------------------------------------------------
# File cleaning


@dataclass
class _Entry:
    """What pass 1 keeps per record: the rule verdict, and the text and label fingerprints."""

    verdict: Optional[tuple[str, str]]
    text: bytes = b""
    labels: bytes = b""


@dataclass
class CleanSummary:
    records_in: int = 0
    kept: int = 0
    rejected: int = 0
    removed: dict = field(default_factory=dict)
    conflicts: int = 0
    merged_records: int = 0

    def remove(self, rule: str) -> None:
        self.removed[rule] = self.removed.get(rule, 0) + 1

    def to_dict(self) -> dict:
        return {"records_in": self.records_in, "kept": self.kept, "rejected": self.rejected,
                "removed": dict(sorted(self.removed.items())), "removed_total": sum(self.removed.values()),
                "conflict_groups": self.conflicts, "merged_records": self.merged_records}


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, object]]:
    """(line number, decoded object or RecordError) for each line of a JSON-lines file; a trailing newline is not a
    line, any other blank line is an error (so that nothing is skipped silently)."""
    import orjson

    with open(path, "rb") as stream:
        for number, data in enumerate(stream, start=1):
            data = data.rstrip(b"\r\n")
            if not data.strip():
                yield number, RecordError("empty line", path=str(path), line=number)
                continue
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError as err:
                yield number, RecordError(f"malformed JSON ({err})", path=str(path), line=number,
                                          raw=data.decode("utf-8", "replace")[:200])
                continue
            if not isinstance(obj, dict):
                yield number, RecordError(f"expected a JSON object, got {type(obj).__name__}", path=str(path),
                                          line=number)
                continue
            yield number, obj


def _records(path: Path, opts: CleanOptions, summary: Optional[CleanSummary]) -> Iterator[tuple[int, dict]]:
    """(line number, record) for every line; a bad line raises, or is counted and reported as rejected."""
    for number, rec in iter_jsonl(path):
        if isinstance(rec, dict) and not isinstance(rec.get("text"), str):
            rec = RecordError("missing or non-string field 'text'", path=str(path), line=number, field="text")
        if isinstance(rec, RecordError):
            if opts.on_error == "fail":
                raise rec
            if summary is not None:
                summary.rejected += 1
            yield number, {"__rejected__": rec.to_reject()}
            continue
        yield number, rec


def _first_pass(path: Path, opts: CleanOptions) -> tuple[dict[int, _Entry], dict[bytes, list[int]]]:
    entries: dict[int, _Entry] = {}
    by_text: dict[bytes, list[int]] = {}
    for number, rec in _records(path, opts, None):
        if "__rejected__" in rec:
            entries[number] = _Entry(("rejected", rec["__rejected__"]["reason"]))
            continue
        verdict = rule_verdict(rec, opts)
        entry = _Entry(verdict)
        if verdict is None and opts.dedup:
            entry.text, entry.labels = text_digest(rec["text"]), labels_digest(rec)
            by_text.setdefault(entry.text, []).append(number)
        entries[number] = entry
    return entries, by_text


def _duplicate_plan(entries: dict[int, _Entry], by_text: dict[bytes, list[int]], opts: CleanOptions,
                    summary: CleanSummary) -> dict[int, tuple[str, str]]:
    """Line → (rule, detail) for every duplicate or conflicting record to remove."""
    plan: dict[int, tuple[str, str]] = {}
    for lines in by_text.values():
        if len(lines) < 2:
            continue
        first = lines[0]
        conflict = len({entries[n].labels for n in lines}) > 1
        summary.conflicts += conflict
        for n in lines[1:]:
            if not conflict:
                plan[n] = ("duplicate", f"same text and labels as line {first}")
            elif opts.on_conflict == "merge":
                plan[n] = ("duplicate_merged", f"labels merged into line {first}")
            else:
                plan[n] = ("conflict", f"same text as line {first} with different labels")
        if conflict and opts.on_conflict == "drop":
            plan[first] = ("conflict", f"same text as line(s) {', '.join(map(str, lines[1:]))} with different labels")
    return plan


def _merge_sources(path: Path, entries, by_text, opts: CleanOptions) -> dict[int, dict]:
    """Pass 2 for ``merge``: first line of each conflict group → the merged record."""
    groups = {lines[0]: lines for lines in by_text.values()
              if len(lines) > 1 and len({entries[n].labels for n in lines}) > 1}
    wanted = {n: first for first, lines in groups.items() for n in lines}
    collected: dict[int, list[dict]] = {}
    for number, rec in _records(path, opts, None):
        if number in wanted:
            collected.setdefault(wanted[number], []).append(rec)
    return {first: merge_labels(recs[0], recs[1:]) for first, recs in collected.items()}


def clean_file(src: str | Path, dst: str | Path, opts: Optional[CleanOptions] = None,
               report: Optional[str | Path] = None) -> dict:
    """Clean a JSON-lines record file into ``dst``; every removed record goes to ``report`` (default
    ``<dst>.removed.jsonl``) as ``{line, rule, detail, text, labels}``. Returns the summary counts."""
    opts = opts or CleanOptions()
    opts.validate()
    refuse_input_as_output(dst, src)
    refuse_input_as_output(report, src)
    src, dst = Path(src), Path(dst)
    report = Path(report) if report else Path(str(dst) + ".removed.jsonl")
    summary = CleanSummary()
    entries, by_text = _first_pass(src, opts)
    plan = _duplicate_plan(entries, by_text, opts, summary) if opts.dedup else {}
    merged = _merge_sources(src, entries, by_text, opts) if opts.on_conflict == "merge" and summary.conflicts else {}
    near = NearDupIndex(opts.near_dup, opts.seed) if opts.near_dup else None
    dst.parent.mkdir(parents=True, exist_ok=True)
    with naming_outputs(dst, report), atomic_output(dst) as dst_tmp, atomic_output(report) as report_tmp, \
            open(dst_tmp, "w", encoding="utf-8", newline="\n") as out, \
            open(report_tmp, "w", encoding="utf-8", newline="\n") as rep:
        for number, rec in _records(src, opts, summary):
            summary.records_in += 1
            if "__rejected__" in rec:
                rep.write(dumps({"line": number, "rule": "rejected", **rec["__rejected__"]}) + "\n")
                continue
            removal = entries[number].verdict or plan.get(number)
            if removal is None and near is not None:
                hit = near.query_add(rec["text"], number)
                if hit is not None:
                    removal = ("near_duplicate", f"similarity {hit[1]:.2f} to line {hit[0]}")
            if removal is not None:
                summary.remove(removal[0])
                rep.write(dumps({"line": number, "rule": removal[0], "detail": removal[1], "text": rec["text"],
                                 "labels": label_count(rec)}) + "\n")
                continue
            if number in merged:
                rec = merged[number]
                summary.merged_records += 1
            summary.kept += 1
            out.write(dumps(rec) + "\n")
    result = summary.to_dict()
    result.update(input=str(src), output=str(dst), report=str(report))
    return result
