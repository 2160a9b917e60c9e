"""Streaming, parallel conversion of raw IE records into IEPile instructions, with a manifest.

Reading, converting and writing are separated so that ``--workers N`` changes only the speed: the input is cut into
batches of lines, each batch is converted by a pure function of (options, schema, lines), and the results are written
in input order. Every record draws from its own seeded generator, so output bytes never depend on the worker count.
Memory stays flat: at most ``2 × workers`` batches are in flight, and output goes to a temporary file that is renamed
into place at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import orjson

from iepile.config import check_ranges, opt
from iepile.convert.report import Stats, manifest_of, warnings_for, write_sidecars
from iepile.convert.sampling import LazyRandom, SamplingOptions, chunk, load_hard_negatives
from iepile.fileio import ProgressBar, atomic_output, die_with_parent, refuse_input_as_output
from iepile.instructions import LANGUAGES, escaped_head, escaped_tail
from iepile.records import Line, RecordError, decode_record
from iepile.schema import Schema, load_schema
from iepile.tasks import get_task
from iepile.tasks.base import Context, Task, item_label

BLOCK_BYTES = 1 << 19  # about 2,000 typical records a block
UTF8_BOM = b"\xef\xbb\xbf"
GROUP_CACHE_SIZE = 100_000  # distinct label sets remembered; bounded so memory stays flat
def _encoder():
    """``json.dumps(obj, ensure_ascii=False)`` with default separators; the C encoder is built once, not per call."""
    make = json.encoder.c_make_encoder
    if make is None:
        return json.JSONEncoder(ensure_ascii=False).encode
    encoder = make(None, None, json.encoder.encode_basestring, None, ": ", ", ", False, False, True)
    return lambda obj: "".join(encoder(obj, 0))


_encode = _encoder()
_quote = json.encoder.encode_basestring  # a JSON string literal, non-ASCII kept: what json.dumps writes for a str


def _escape(text: str) -> str:
    """The inside of a JSON string literal (no surrounding quotes)."""
    return _quote(text)[1:-1]


@dataclass
class ConvertOptions:
    """Every setting of ``iepile convert`` (the command is built from these fields)."""

    task: str = opt(help="NER, RE, SPO, EE, EET, EEA or KG.", short="-t")
    language: str = opt("zh", "Instruction language: en or zh.", short="-l")
    schema_path: Optional[str] = opt(None, "3-line schema.json or a JSON/YAML schema.", flag="--schema", short="-s")
    split: str = opt("train", "train (with output) or test (with id, label).")
    source: Optional[str] = opt(None, "Dataset name; default: the input's folder name.")
    split_num: Optional[int] = opt(None, "Schema items per instruction (-1: all). Default per task: NER 6, KG 1, "
                                   "others 4.")
    neg_ratio: float = opt(1.0, "Bernoulli rate of negative schema items (1 = all, 0 = none, <0 = all without "
                           "sampling).", max=1)
    max_neg_per_pos: Optional[int] = opt(None, "At most K negative schema items per positive one.", min=0)
    random_sort: bool = opt(False, "Shuffle schema order (train) instead of sorting.")
    hard_negatives: Optional[str] = opt(None, "Hard-negative dictionary (flat, or nested task → dataset → "
                                        "dictionary).")
    hard_negative_dataset: Optional[str] = opt(None, "Section of a nested hard-negative dictionary.")
    seed: int = opt(42, "Seed of every random choice (each record draws from its own seeded generator).")
    workers: int = opt(1, "Worker processes (output is identical for any N).", short="-j", min=1)
    on_error: str = opt("fail", "fail: stop at the first bad record; skip: write it to <output>.rejects.jsonl and "
                        "go on.")
    progress: bool = opt(True, "No progress bar.", flag="--quiet", invert=True)

    def validate(self) -> None:
        check_ranges(self)
        get_task(self.task)
        if self.language not in LANGUAGES:
            raise ValueError(f"--language must be one of {', '.join(LANGUAGES)}, got {self.language!r}")
        if self.split not in ("train", "test"):
            raise ValueError(f"--split must be train or test, got {self.split!r}")
        if self.on_error not in ("fail", "skip"):
            raise ValueError(f"--on-error must be fail or skip, got {self.on_error!r}")
        if self.split_num is not None and self.split_num != -1 and self.split_num < 1:
            raise ValueError(f"--split-num must be a positive integer or -1, got {self.split_num}")


@dataclass
class BatchResult:
    data: bytes  # UTF-8 output lines: encoded in the worker, so the writing process only copies bytes
    rejects: list[dict]
    stats: Stats


class Converter:
    """Everything a worker needs to convert lines: a pure function of its options, schema and the lines."""

    def __init__(self, options: ConvertOptions, schema: Schema, path: str, source: str):
        self.options, self.schema, self.path, self.source = options, schema, path, source
        self.task: Task = get_task(options.task)
        hard = (load_hard_negatives(options.hard_negatives, self.task.name, options.hard_negative_dataset)
                if options.hard_negatives else None)
        split_num = options.split_num if options.split_num is not None else self.task.default_split_num
        self.sampling = SamplingOptions(options.neg_ratio, options.max_neg_per_pos, options.random_sort,
                                        split_num, hard)
        self.split_num = split_num
        self.line_head = f'{{"task": {_quote(self.task.name)}, "source": {_quote(source)}'
        self.escaped_instruction_head = escaped_head(self.task.name, options.language)
        self._group_cache: dict[tuple, list[tuple]] = {}

    def convert_batch(self, batch: "Batch") -> BatchResult:
        out: list[str] = []
        rejects: list[dict] = []
        stats = Stats()
        for offset, row in enumerate(batch.rows()):
            index = batch.first_index + offset
            stats.records_in += 1
            try:
                record = decode_record(Line(index, index + 1, row), self.task.record_type, self.path)
                produced = self.convert_record(record, index, row, stats)
            except RecordError as err:
                err.path, err.line = self.path, index + 1
                err.raw = err.raw or row.decode("utf-8", "replace")
                rejects.append(err.to_reject())
                stats.rejected += 1
                continue
            stats.converted += 1
            stats.instructions += len(produced)
            stats.instructions_per_record[len(produced)] += 1
            stats.records_without_instructions += not produced
            out.extend(produced)
        text = "\n".join(out) + "\n" if out else ""
        return BatchResult(text.encode("utf-8"), rejects, stats)

    def convert_record(self, record, index: int, row: bytes, stats: Stats) -> list[str]:
        if not record.text.strip():  # an instruction with an empty input would teach that nothing is the answer
            raise RecordError("empty text (nothing to extract from)", field="$.text")
        label = self.dedupe(record, row, stats)
        self.task.check(record, self.schema)
        # The instruction is written already escaped as a JSON string, piece by piece: escaping is per character,
        # so the escaped sentence and schema groups are computed once, not once per line.
        tail = escaped_tail(record.text)
        lines = []
        for group, escaped_group, group_labels in self.groups(record, index, stats):
            stats.groups_asked[group_labels] += 1
            instruction = f'"{self.escaped_instruction_head}{escaped_group}{tail}"'
            lines.append(self.render_line(record, group, instruction, label, index, stats))
        return lines

    def groups(self, record, index: int, stats: Stats) -> list[tuple]:
        """The record's schema groups, each with its JSON and labels. When the items depend only on a key (no
        sampling drawn, or a test split), the groups are built once per key and reused."""
        if self.options.split == "train":
            key = self.task.items_key(record, self.sampling)
        else:
            key = None if self.task.test_items_use_record else ()
        if key is not None and key in self._group_cache:
            return self._group_cache[key]
        if self.options.split == "train":
            ctx = Context(self.schema, self.sampling, LazyRandom(self.options.seed, index), stats.sampling)
            items = self.task.train_items(record, ctx)
        else:
            items = self.task.test_items(record, self.schema)
        groups = [(group, _escape(_encode(group)), tuple(map(item_label, group)))
                  for group in chunk(items, self.split_num)]
        if key is not None:
            if len(self._group_cache) >= GROUP_CACHE_SIZE:
                self._group_cache.clear()
            self._group_cache[key] = groups
        return groups

    def dedupe(self, record, row: bytes, stats: Stats) -> Optional[str]:
        """Drop repeated annotations (first kept). For the test split, returns the ``label``: the JSON of the raw
        annotation list after the same filter, in the input's own key order; ``None`` when the key is absent."""
        key = self.task.annotation_key
        items = getattr(record, key)
        if items is None:
            stats.records_without_annotation_key += 1
            return None
        kept = range(len(items))
        keys = self.task.dedupe_keys(items) if len(items) > 1 else ()
        if keys and keys[0] is not None and len(set(keys)) < len(keys):
            seen: dict = {}
            for index, dedupe_key in enumerate(keys):
                seen.setdefault(dedupe_key, index)
            kept = sorted(seen.values())
            setattr(record, key, [items[i] for i in kept])
        if self.options.split != "test":
            return None
        try:  # msgspec skipped what orjson may refuse (a number like 1e999 in a field the record does not have)
            raw = orjson.loads(row)[key]
        except orjson.JSONDecodeError as err:
            raise RecordError(f"malformed JSON ({err})") from None
        return _encode([raw[i] for i in kept])

    def render_line(self, record, group: list, instruction: str, label: Optional[str], index: int,
                    stats: Stats) -> str:
        """One output line (``instruction`` comes already quoted), written field by field: the same bytes as
        ``json.dumps(line, ensure_ascii=False)``."""
        if self.options.split == "train":
            answer = self.task.render_output(record, group, self.schema)
            filled = sum(map(bool, answer.values()))
            stats.positive_items += filled
            stats.negative_items += len(answer) - filled
            output = _encode(answer)
            return f'{self.line_head}, "instruction": {instruction}, "output": {_quote(output)}}}'
        text_id = hashlib.sha256(record.text.encode("utf-8")).hexdigest()
        label_part = "" if label is None else f', "label": {_quote(label)}'
        return (f'{{"id": "{text_id}", {self.line_head[1:]}, "instruction": {instruction}{label_part}, '
                f'"record_index": {index}}}')


# -- reading and parallel execution -----------------------------------------------------------------------------

@dataclass
class Batch:
    """A block of whole input lines, shipped to a worker as one bytes object (cheap to pickle, no per-line objects
    in the reading process); ``first_index`` is the position of its first record."""

    first_index: int
    data: bytes

    def rows(self) -> list[bytes]:
        rows = self.data.split(b"\n")
        if rows and rows[-1] == b"":
            rows.pop()  # the newline that ends the block
        if b"\r" in self.data:
            rows = [row.rstrip(b"\r") for row in rows]
        if self.first_index == 0 and rows and rows[0].startswith(UTF8_BOM):  # saved by a Windows editor
            rows[0] = rows[0][len(UTF8_BOM):]
        return rows

    def line_count(self) -> int:
        return self.data.count(b"\n") + (not self.data.endswith(b"\n"))


def _batches(stream, hasher, block_bytes: int = BLOCK_BYTES) -> Iterator[Batch]:
    """Cut a binary stream into blocks of whole lines."""
    index, carry = 0, b""
    while True:
        block = stream.read(block_bytes)
        if not block:
            break
        hasher.update(block)
        block = carry + block
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            carry = block
            continue
        batch = Batch(index, block[:cut])
        carry = block[cut:]
        index += batch.line_count()
        yield batch
    if carry:
        yield Batch(index, carry)


_worker_converter: Optional[Converter] = None


def _init_worker(converter: Converter, parent_pid: int) -> None:
    global _worker_converter
    die_with_parent(parent_pid)  # a killed ``iepile convert -j N`` leaves no worker behind
    _worker_converter = converter


def _convert_in_worker(batch: Batch) -> BatchResult:
    return _worker_converter.convert_batch(batch)


def _run(converter: Converter, batches: Iterable[Batch], workers: int) -> Iterator[BatchResult]:
    """Batch results in input order; with workers, at most ``2 × workers`` batches are in flight."""
    if workers == 1:
        yield from map(converter.convert_batch, batches)
        return
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor  # imported here: the serial path should not pay for it

    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(converter, os.getpid())) as pool:
        pending: deque = deque()
        for batch in batches:
            pending.append(pool.submit(_convert_in_worker, batch))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# -- the stage ----------------------------------------------------------------------------------------------------

def default_source(src: str) -> str:
    """The reference's rule: the input's parent folder name (``IE-zh/NER/MSRA/test.json`` → ``MSRA``)."""
    if src == "-":
        return "stdin"
    return Path(src).resolve().parent.name


def convert_file(src: str | os.PathLike, dst: str | os.PathLike, options: ConvertOptions) -> dict:
    """Convert a JSON-lines file (``-`` = stdin) into an instruction file (``-`` = stdout), writing
    ``<dst>.manifest.json`` and, with ``on_error="skip"``, ``<dst>.rejects.jsonl``. Returns the manifest."""
    options.validate()
    src, dst = str(src), str(dst)
    refuse_input_as_output(dst, src, options.schema_path, options.hard_negatives)
    schema = load_schema(options.schema_path)
    if options.schema_path:
        get_task(options.task).require_schema(schema, options.schema_path)
    converter = Converter(options, schema, src, options.source or default_source(src))
    if dst != "-":
        Path(dst).parent.mkdir(parents=True, exist_ok=True)  # as import, clean and build do
    stats, rejects = Stats(), []
    hasher = hashlib.sha256()
    with contextlib.ExitStack() as stack:  # closes the output, then renames it into place (or removes it), then the input
        in_stream = sys.stdin.buffer if src == "-" else stack.enter_context(open(src, "rb"))
        out_stream = sys.stdout.buffer if dst == "-" else stack.enter_context(open(stack.enter_context(
            atomic_output(dst)), "wb"))
        bar = stack.enter_context(ProgressBar(f"converting {src}", unit="records",
                                              enabled=options.progress and dst != "-"))
        for result in _run(converter, _batches(in_stream, hasher), options.workers):
            if result.rejects and options.on_error == "fail":
                first = result.rejects[0]
                raise RecordError(first["reason"], path=first["file"], line=first["line"], field=first["field"])
            out_stream.write(result.data)
            rejects.extend(result.rejects)
            stats.add(result.stats)
            bar.update(advance=result.stats.records_in)
    manifest = manifest_of(options, schema, converter, hasher.hexdigest(), stats, src)
    manifest["warnings"] = warnings_for(converter.task, stats, src)
    if dst != "-":
        write_sidecars(dst, manifest, rejects)
    return manifest


# -- the Python API -------------------------------------------------------------------------------------------------

def convert(records: Iterable[dict], *, task: str, language: str = "zh", schema: Schema | str | list | dict | None = None,
            split: str = "train", source: str = "api", **option_values: Any) -> list[dict]:
    """Convert records (dicts in the unified format) in memory; ``schema`` is a :class:`Schema`, a schema file path,
    or inline labels. Raises :class:`RecordError` on the first bad record."""
    options = ConvertOptions(task=task, language=language, split=split, source=source, **option_values)
    options.validate()
    if isinstance(schema, (list, dict)):
        schema = get_task(task).schema_from_labels(schema)
    elif not isinstance(schema, Schema):
        schema = load_schema(schema)
    converter = Converter(options, schema, "<records>", source)
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    result = converter.convert_batch(Batch(0, data))
    if result.rejects:
        first = result.rejects[0]
        raise RecordError(first["reason"], path=first["file"], line=first["line"], field=first["field"])
    return [json.loads(line) for line in result.data.splitlines()]
