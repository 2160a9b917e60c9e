"""``iepile predict``: answers for a file of test instructions, fast, resumable and in input order.

Why it looks like this:

* The reference generated one instruction at a time. Here prompts are sorted by their tokens and generated in
  batches (greedy): a batch shares its template, task sentence and schema, computed once (see
  :meth:`iepile.inference.generators.TransformersGenerator.generate_batch`), and only the input texts are padded.
* Batches finish out of input order, so answers go first to a journal (``OUT.partial``: one JSON line per answer,
  appended and flushed as they come). After a crash or ``kill -9``, the same command reads the journal and skips
  what is done. When every answer is in, ``OUT`` is written in input order (temporary file + rename) and the journal
  is removed, so ``OUT`` never holds a half-written or duplicated line.
* A resume must not mix two runs: the journal's header records a hash of the input file and of the settings that
  change answers (model, adapter, template, decoding); a journal or a finished ``OUT`` (its ``OUT.predict.json``
  holds the same header) from another input or other settings is refused, saying what differs. A finished ``OUT``
  counts as done only when each of its lines is its input line plus an ``output`` string.
* ``--shard i/n`` takes the i-th of n contiguous blocks of lines, so ``cat OUT.0 OUT.1 ...`` is the full answer file.
* The prompt comes from the same :class:`~iepile.modeling.prompts.PromptBuilder` as training.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from iepile.config import opt
from iepile.fileio import (ProgressBar, atomic_output, check_writable, refuse_input_as_output, sha256_file,
                           write_text_atomic)
from iepile.inference.generators import GenerationOptions, GenerationStats, Request, load_generator

_encode = json.JSONEncoder(ensure_ascii=False).encode
JOURNAL_VERSION = 2
# The settings that change an answer (not batch_size or device: batching gives the same greedy answers).
ANSWER_SETTINGS = ("model", "adapter", "template", "max_new_tokens", "constrain", "threshold", "dtype", "backend",
                   "task")


@dataclass
class PredictOptions(GenerationOptions):
    """Every setting of ``iepile predict`` (the command is built from these fields)."""

    shard: Optional[str] = opt(None, "i/n: answer the i-th of n contiguous blocks of lines (cat the shard outputs "
                               "in order to merge).")
    task: Optional[str] = opt(None, "Task for lines without a \"task\" field (constrained decoding needs it).")
    overwrite: bool = opt(False, "Start over instead of resuming.")
    progress: bool = opt(True, "No progress bar.", flag="--quiet", invert=True)

    def validate(self) -> None:
        super().validate()
        if self.shard is not None:
            parse_shard(self.shard)


def parse_shard(shard: str) -> tuple[int, int]:
    """``"i/n"`` → (i, n) with 0 ≤ i < n."""
    try:
        index, count = (int(part) for part in shard.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {shard!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {shard}: need 0 <= i < n")
    return index, count


def shard_range(total: int, shard: Optional[str]) -> range:
    """The contiguous block of line indices one shard owns (blocks differ in size by at most one line)."""
    if shard is None:
        return range(total)
    index, count = parse_shard(shard)
    return range(total * index // count, total * (index + 1) // count)


# -- the journal ---------------------------------------------------------------------------------------------------

def journal_path(out: str | os.PathLike) -> Path:
    return Path(f"{out}.partial")


def record_path(out: str | os.PathLike) -> Path:
    """Where a finished ``OUT`` keeps its run header (which input, which settings)."""
    return Path(f"{out}.predict.json")


def answer_settings(options: PredictOptions) -> dict:
    """The settings an answer depends on; existing paths made absolute (a resume from another folder is the same)."""
    settings = {name: getattr(options, name) for name in ANSWER_SETTINGS}
    for name in ("model", "adapter"):
        if settings[name] is not None and Path(settings[name]).exists():
            settings[name] = str(Path(settings[name]).resolve())
    return settings


def run_header(src: str | os.PathLike, options: PredictOptions, owned: range) -> dict:
    """What a journal and a finished output must agree on to be resumed: input, shard, settings."""
    settings = answer_settings(options)
    return {"iepile_predict": JOURNAL_VERSION, "input_sha256": sha256_file(src), "shard": options.shard,
            "lines": len(owned), "settings": settings,
            "settings_sha256": hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()}


def header_differences(found: dict, expected: dict) -> list[str]:
    """What makes a recorded run another run, in words. A version-1 header (no settings recorded) is compared on
    its input and shard only, so that runs started before settings were recorded still resume."""
    differences = []
    if found.get("input_sha256") != expected["input_sha256"]:
        differences.append("a different input file (its SHA-256 differs)")
    for key in ("shard", "lines"):
        if found.get(key) != expected[key]:
            differences.append(f"{key} {found.get(key)!r} (now {expected[key]!r})")
    if found.get("iepile_predict") == 1:
        return differences
    if found.get("iepile_predict") != JOURNAL_VERSION:
        return differences + [f"journal version {found.get('iepile_predict')!r} (now {JOURNAL_VERSION})"]
    settings = found.get("settings") or {}
    differences += [f"--{name.replace('_', '-')} {settings.get(name)!r} (now {value!r})"
                    for name, value in expected["settings"].items() if settings.get(name) != value]
    return differences


def refuse_another_run(path: Path, found: dict, expected: dict) -> None:
    differences = header_differences(found, expected)
    if differences:
        raise ValueError(f"{path} belongs to another run: it was made with {'; '.join(differences)}. Resuming would "
                         "mix two runs' answers: pass --overwrite to start over (or choose another output)")


class Journal:
    """Answers appended and flushed as they come: a header line (:func:`run_header`), then
    ``{"i": line index, "output": text}`` lines. The header is written whole (atomically); a torn last line
    (``kill -9`` mid-write) is cut off on reopen; any other damage is an error naming the line."""

    def __init__(self, path: Path, header: dict):
        self.path, self.header = path, header
        self.done: dict[int, str] = {}
        if path.exists():
            self._load()
        else:
            write_text_atomic(path, _encode(header) + "\n")
        self.handle = open(path, "a", encoding="utf-8")

    def _load(self) -> None:
        data = self.path.read_bytes()
        complete = data[:data.rfind(b"\n") + 1]
        lines = complete.decode("utf-8", "replace").splitlines()
        found = _journal_line(self.path, 1, lines[0] if lines else data.decode("utf-8", "replace"), "header")
        refuse_another_run(self.path, found, self.header)
        for number, line in enumerate(lines[1:], start=2):
            entry = _journal_line(self.path, number, line, "answer")
            if not isinstance(entry.get("i"), int) or not isinstance(entry.get("output"), str):
                raise ValueError(f"{self.path}:{number}: not an answer line ({{\"i\": N, \"output\": text}}); "
                                 "pass --overwrite to start over")
            self.done[entry["i"]] = entry["output"]
        if len(complete) != len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(len(complete))

    def add(self, index: int, output: str) -> None:
        self.done[index] = output
        self.handle.write(_encode({"i": index, "output": output}) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _journal_line(path: Path, number: int, line: str, what: str) -> dict:
    try:
        value = json.loads(line)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        damage = "is torn or is not JSON" if line else "is empty"
        raise ValueError(f"{path}:{number}: the journal's {what} line {damage}, so its answers cannot be trusted; "
                         "pass --overwrite to start over (or delete the journal)")
    return value


# -- the stage -------------------------------------------------------------------------------------------------------

@dataclass
class PredictSummary:
    lines: int = 0
    already_done: int = 0
    generated: int = 0
    seconds: float = 0.0
    stats: Optional[GenerationStats] = None
    output: str = ""

    @property
    def instructions_per_second(self) -> float:
        return self.generated / self.seconds if self.seconds else 0.0


def read_instruction_lines(path: str | os.PathLike) -> list[str]:
    """Non-empty lines of an instruction file, each checked to be a JSON object with an ``instruction``."""
    lines = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not JSON ({err})") from None
            if not isinstance(record, dict) or not isinstance(record.get("instruction"), str):
                raise ValueError(f"{path}:{number}: expected a JSON object with an \"instruction\" string")
            lines.append(line)
    return lines


def predict_file(src: str | os.PathLike, dst: str | os.PathLike, options: PredictOptions,
                 generator=None) -> PredictSummary:
    """Answer every instruction of ``src`` (its shard) into ``dst``; resumes from ``dst.partial``. ``generator`` lets
    callers (tests, the bench) reuse a loaded model."""
    options.validate()
    refuse_input_as_output(dst, src)
    check_writable(dst, "DST")  # before the model loads
    started = time.perf_counter()
    lines = read_instruction_lines(src)
    owned = shard_range(len(lines), options.shard)
    dst_path, journal_file = Path(dst), journal_path(dst)
    summary = PredictSummary(lines=len(owned), output=str(dst))
    header = run_header(src, options, owned)
    if options.overwrite:
        journal_file.unlink(missing_ok=True)
    elif dst_path.exists() and not journal_file.exists():
        check_finished(dst_path, header, lines, owned)
        summary.already_done = len(owned)
        return summary
    journal = Journal(journal_file, header)
    try:
        summary.already_done = sum(1 for i in owned if i in journal.done)
        todo = [i for i in owned if i not in journal.done]
        if todo:
            generator = generator or load_generator(options)
            _answer(generator, lines, todo, journal, options)
            summary.stats = generator.stats
        summary.generated = len(todo)
    finally:
        journal.close()
    _write_in_order(lines, owned, journal.done, dst_path)
    write_text_atomic(record_path(dst_path), json.dumps(header, ensure_ascii=False, indent=2) + "\n")
    journal_file.unlink()  # last: until the record is written, a rerun finishes from the journal
    summary.seconds = time.perf_counter() - started
    return summary


def _answer(generator, lines: list[str], todo: list[int], journal: Journal, options: PredictOptions) -> None:
    records = [json.loads(lines[i]) for i in todo]
    requests = [Request(generator.prompt_ids(r["instruction"]), r.get("task") or options.task, r["instruction"])
                for r in records]
    _check_lengths(requests, generator, options, todo)
    started, done = time.perf_counter(), 0
    with ProgressBar("predicting", len(todo), fields={"rate": ""}, enabled=options.progress) as bar:
        def on_answer(position: int, text: str) -> None:
            nonlocal done
            journal.add(todo[position], text)
            done += 1
            bar.update(advance=1, rate=f"{done / max(time.perf_counter() - started, 1e-9):.2f} instructions/s")

        generator.generate(requests, on_answer)


def _check_lengths(requests: list[Request], generator, options: PredictOptions, todo: list[int]) -> None:
    """Never cut a prompt silently: a prompt that cannot fit the model with its answer budget is an error that
    names the line (``iepile extract`` splits long texts into windows instead)."""
    limit = generator.context_length - options.max_new_tokens
    for request, index in zip(requests, todo):
        if len(request.prompt_ids) > limit:
            raise ValueError(f"instruction on line {index + 1} has a {len(request.prompt_ids)}-token prompt; with "
                             f"--max-new-tokens {options.max_new_tokens} the model fits at most {limit}. "
                             "Convert with a smaller --split-num, or use `iepile extract`, which splits long texts")


def _write_in_order(lines: list[str], owned: range, answers: dict[int, str], dst: Path) -> None:
    """The final file: each owned input line once, in input order, plus its ``output``; written atomically."""
    with atomic_output(dst) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        for index in owned:
            record = json.loads(lines[index])
            record["output"] = answers[index]
            handle.write(_encode(record) + "\n")


def check_finished(dst: Path, header: dict, lines: list[str], owned: range) -> None:
    """An existing ``dst`` without a journal is "all answered" only if its record names this input and these
    settings (when there is a record: outputs of older versions have none) and each of its lines is the owned
    input line plus an ``output`` string; anything else is refused, never overwritten or trusted."""
    record = record_path(dst)
    if record.exists():
        refuse_another_run(dst, _journal_line(record, 1, record.read_text(encoding="utf-8"), "record"), header)
    problem = _unfinished_line(dst, lines, owned)
    if problem:
        raise ValueError(f"{dst} exists and is not a finished answer file for this input ({problem}); pass "
                         "--overwrite to answer again (or choose another output)")


def _unfinished_line(dst: Path, lines: list[str], owned: range) -> Optional[str]:
    """Why ``dst`` is not the owned input lines with their answers (the first bad line), or None."""
    with open(dst, encoding="utf-8", errors="replace") as handle:
        answered = [line for line in handle if line.strip()]
    if len(answered) != len(owned):
        return f"{len(answered)} lines for {len(owned)} instructions"
    for number, (line, index) in enumerate(zip(answered, owned), start=1):
        try:
            record = json.loads(line)
        except ValueError:
            return f"line {number} is not JSON"
        if not isinstance(record, dict) or not isinstance(record.pop("output", None), str):
            return f"line {number} has no \"output\" string"
        expected = json.loads(lines[index])
        expected.pop("output", None)  # an input with an output of its own (a train file) gets the answer instead
        if record != expected:
            return f"line {number} is not the answer to input line {index + 1}"
    return None
