"""``iepile predict``: batching gives the one-at-a-time greedy answers, runs resume after a crash or kill -9 with
every line exactly once in input order, shards partition the file, and the real default model answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import iepile
from iepile.inference.generators import answer_instructions
from iepile.inference.predict import PredictOptions, journal_path, predict_file, shard_range
from predict_support import tiny_generator, tiny_loaded, tiny_model_dir, tiny_tokenizer  # noqa: F401 (fixtures)

TEXTS = ["Alice met Bob in Paris.", "北京是中国的首都。", "ACME hired Carol in Berlin last year, said the report.",
         "Short.", "Dr. Smith moved from London to Rome in 1999 with his family and two dogs.",
         "上海和广州都是很大的城市，人口很多。", "Nothing here", "Barcelona beat Madrid 2-1 on Sunday evening."]


def _records():
    return [{"text": t, "entity": []} for t in TEXTS]


@pytest.fixture()
def instruction_file(tmp_path):
    lines = iepile.convert(_records(), task="NER", language="en", split="test", split_num=2,
                           schema=["person", "location", "organisation"])
    path = tmp_path / "test.json"
    path.write_text("".join(json.dumps(l, ensure_ascii=False) + "\n" for l in lines), encoding="utf-8")
    return path, lines


def _outputs(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_batched_equals_one_at_a_time(tiny_generator, instruction_file):
    _, lines = instruction_file
    instructions = [l["instruction"] for l in lines]
    tiny_generator.batch_size = 1
    single = answer_instructions(tiny_generator, instructions, ["NER"] * len(lines))
    tiny_generator.batch_size = 5
    batched = answer_instructions(tiny_generator, instructions, ["NER"] * len(lines))
    assert batched == single
    assert len(set(single)) > 1 and all(single)  # the tiny model writes varied, non-empty answers


def test_shared_prefix_gives_the_answers_of_plain_padding(tiny_generator, instruction_file, monkeypatch):
    """The prompt prefix shared by a batch is computed once and its cache copied to every row; the answers are
    those of running every row's whole prompt with left padding."""
    _, lines = instruction_file
    instructions = [l["instruction"] for l in lines]
    prompts = [tiny_generator.prompt_ids(text) for text in instructions]
    assert tiny_generator._shared_prefix(prompts) > len(prompts[0]) // 2  # template, task sentence and schema
    tiny_generator.batch_size = 5
    shared = answer_instructions(tiny_generator, instructions, ["NER"] * len(lines))
    monkeypatch.setattr(type(tiny_generator), "MIN_SHARED_PREFIX", 10 ** 6)
    assert tiny_generator._shared_prefix(prompts) == 0
    plain = answer_instructions(tiny_generator, instructions, ["NER"] * len(lines))
    assert shared == plain


def test_output_lines_keep_input_fields_in_order(tiny_generator, instruction_file, tmp_path):
    src, lines = instruction_file
    out = tmp_path / "out.json"
    summary = predict_file(src, out, PredictOptions(progress=False), generator=tiny_generator)
    records = _outputs(out)
    assert summary.generated == len(lines) and not journal_path(out).exists()
    assert [{k: v for k, v in r.items() if k != "output"} for r in records] == lines
    assert all(isinstance(r["output"], str) for r in records)
    assert list(records[0]) == ["id", "task", "source", "instruction", "label", "record_index", "output"]


class _Crash(Exception):
    pass


class _CrashingGenerator:
    """Answers ``limit`` instructions, then dies as a crash would (answers already journaled stay)."""

    def __init__(self, inner, limit):
        self.inner, self.limit, self.stats = inner, limit, inner.stats
        self.context_length = inner.context_length

    def prompt_ids(self, instruction):
        return self.inner.prompt_ids(instruction)

    def generate(self, requests, on_answer):
        count = 0

        def counting(position, text):
            nonlocal count
            if count == self.limit:
                raise _Crash()
            on_answer(position, text)
            count += 1

        self.inner.generate(requests, counting)


def test_resume_after_crash_and_torn_journal(tiny_generator, instruction_file, tmp_path):
    src, lines = instruction_file
    options = PredictOptions(progress=False)
    clean = tmp_path / "clean.json"
    predict_file(src, clean, options, generator=tiny_generator)
    out = tmp_path / "out.json"
    with pytest.raises(_Crash):
        predict_file(src, out, options, generator=_CrashingGenerator(tiny_generator, 3))
    assert not out.exists()
    with open(journal_path(out), "a", encoding="utf-8") as journal:
        journal.write('{"i": 7, "outp')  # a write torn by kill -9
    summary = predict_file(src, out, options, generator=tiny_generator)
    assert (summary.already_done, summary.generated) == (3, len(lines) - 3)
    assert out.read_text(encoding="utf-8") == clean.read_text(encoding="utf-8")
    again = predict_file(src, out, options, generator=tiny_generator)  # finished: nothing to do
    assert again.generated == 0 and again.already_done == len(lines)


def test_journal_of_another_input_is_refused(tiny_generator, instruction_file, tmp_path):
    src, _ = instruction_file
    out = tmp_path / "out.json"
    journal_path(out).write_text('{"iepile_predict": 1, "input_sha256": "other", "shard": null, "lines": 8}\n')
    with pytest.raises(ValueError, match="another run"):
        predict_file(src, out, PredictOptions(progress=False), generator=tiny_generator)


def test_resume_with_other_settings_or_input_is_refused_saying_what_differs(tiny_generator, instruction_file,
                                                                             tmp_path):
    src, lines = instruction_file
    out = tmp_path / "out.json"
    options = PredictOptions(progress=False, max_new_tokens=16)
    with pytest.raises(_Crash):
        predict_file(src, out, options, generator=_CrashingGenerator(tiny_generator, 3))
    journal = journal_path(out).read_bytes()
    with pytest.raises(ValueError, match=r"another run: .*--max-new-tokens 16 \(now 8\).*--overwrite"):
        predict_file(src, out, PredictOptions(progress=False, max_new_tokens=8), generator=tiny_generator)
    assert journal_path(out).read_bytes() == journal  # nothing mixed in
    predict_file(src, out, options, generator=tiny_generator)
    finished = out.read_bytes()
    with pytest.raises(ValueError, match=r"--constrain False \(now True\)"):  # a finished output is checked too
        predict_file(src, out, PredictOptions(progress=False, max_new_tokens=16, constrain=True),
                     generator=tiny_generator)
    src.write_text(src.read_text(encoding="utf-8").replace("Alice", "Alicia"), encoding="utf-8")
    with pytest.raises(ValueError, match="a different input file"):
        predict_file(src, out, options, generator=tiny_generator)
    assert out.read_bytes() == finished
    redone = predict_file(src, out, PredictOptions(progress=False, max_new_tokens=16, overwrite=True),
                          generator=tiny_generator)
    assert redone.generated == len(lines) and "Alicia" in out.read_text(encoding="utf-8")


def test_an_output_of_the_right_length_is_not_taken_as_answered(tiny_generator, instruction_file, tmp_path):
    """Eight lines of ``x`` (or the input copied) are not "all answered": refused, and the file is left alone."""
    src, lines = instruction_file
    for content in ["x\n" * len(lines), src.read_text(encoding="utf-8")]:
        out = tmp_path / "out.json"
        out.write_text(content, encoding="utf-8")
        with pytest.raises(ValueError, match="not a finished answer file for this input"):
            predict_file(src, out, PredictOptions(progress=False), generator=tiny_generator)
        assert out.read_text(encoding="utf-8") == content


def test_a_torn_journal_header_is_a_clear_error_before_the_model_loads(instruction_file, tmp_path):
    from typer.testing import CliRunner

    from iepile.cli import app

    src, _ = instruction_file
    out = tmp_path / "out.json"
    journal_path(out).write_text('{"iepile_predict": 2, "input_sh', encoding="utf-8")  # kill -9 mid-header
    result = CliRunner().invoke(app, ["predict", str(src), str(out), "--model", str(tmp_path / "no-model")])
    assert result.exit_code == 1
    assert f"{journal_path(out)}:1: the journal's header line is torn" in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_shards_partition_the_file(tiny_generator, instruction_file, tmp_path):
    src, lines = instruction_file
    assert [i for n in range(3) for i in shard_range(10, f"{n}/3")] == list(range(10))
    parts = []
    for index in range(2):
        out = tmp_path / f"out.{index}"
        predict_file(src, out, PredictOptions(shard=f"{index}/2", progress=False), generator=tiny_generator)
        parts.append(out.read_text(encoding="utf-8"))
    whole = tmp_path / "whole.json"
    predict_file(src, whole, PredictOptions(progress=False), generator=tiny_generator)
    assert "".join(parts) == whole.read_text(encoding="utf-8")
    with pytest.raises(ValueError):
        shard_range(4, "2/2")


def test_kill_9_then_rerun(tiny_model_dir, instruction_file, tmp_path):
    """A real ``iepile predict`` process killed mid-run; the same command finishes the file."""
    src, lines = instruction_file
    out = tmp_path / "out.json"
    command = [sys.executable, "-m", "iepile.cli", "predict", str(src), str(out), "--model", str(tiny_model_dir),
               "--batch-size", "1", "--max-new-tokens", "48", "--dtype", "fp32", "--device", "cpu"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = journal_path(out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if journal.exists() and journal.read_text(encoding="utf-8").count("\n") >= 3:  # header + 2 answers
            break
        time.sleep(0.05)
    killed_midway = process.poll() is None
    if killed_midway:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = _outputs(out)
    assert [{k: v for k, v in r.items() if k != "output"} for r in records] == lines
    assert not journal.exists()
    assert killed_midway, "the run finished before it could be killed; the resume path was not exercised"


def test_prompt_too_long_is_an_error_not_a_cut(tiny_generator, tmp_path):
    lines = iepile.convert([{"text": "word " * 3000, "entity": []}], task="NER", language="en", split="test",
                           schema=["person"])
    src = tmp_path / "long.json"
    src.write_text(json.dumps(lines[0]) + "\n")
    with pytest.raises(ValueError, match="line 1"):
        predict_file(src, tmp_path / "out.json", PredictOptions(progress=False), generator=tiny_generator)


@pytest.mark.slow
def test_default_model_answers_a_few_instructions(tmp_path):
    """The real default model, batched and constrained: answers parse and hold the asked keys."""
    from iepile.inference.generators import TransformersGenerator

    lines = iepile.convert([{"text": "Alice Smith works for ACME in Paris.", "entity": []},
                            {"text": "张三在北京工作。", "entity": []}],
                           task="NER", language="en", split="test", schema=["person", "location"])
    generator = TransformersGenerator.load(None, batch_size=2, max_new_tokens=24, constrain=True)
    answers = answer_instructions(generator, [l["instruction"] for l in lines], ["NER"] * len(lines))
    for answer in answers:
        assert list(json.loads(answer)) == ["location", "person"]


@pytest.mark.parametrize("text, stop", [
    ('{"person": ["A}[b"], "x": []} and an explanation {"more": 1}', '{"person": ["A}[b"], "x": []}'),
    ('Sure! [1] Here: {"a": {"b": "\\"}"}} etc.', 'Sure! [1] Here: {"a": {"b": "\\"}"}}'),
    ('no object at all [] }', None),
])
def test_answer_end_stops_a_row_at_its_first_closed_object(tiny_tokenizer, text, stop):
    """The stopping criterion ends a row right after the token that closes its first top-level JSON object
    (brackets in strings, escaped quotes and brackets before the object do not count)."""
    import torch

    from iepile.inference.generators import AnswerEnd

    ids = tiny_tokenizer.encode(text, add_special_tokens=False)
    criterion, stopped_after = AnswerEnd(tiny_tokenizer, 2), None
    for step in range(len(ids)):
        rows = torch.tensor([ids[:step + 1], ids[:step + 1]])
        done = criterion(rows, None)
        if done.all() and stopped_after is None:
            stopped_after = tiny_tokenizer.decode(ids[:step + 1])
    assert stopped_after == stop
