"""Training end to end on real CoNLL-2003 instructions with a tiny llama (and one short run of the real model).

No mocks: every test runs the real Trainer/peft/accelerate stack. fp32 is used where results are compared exactly.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import pathlib
import signal
import subprocess
import sys

import pytest
import torch

from iepile.modeling.loading import load_model_and_tokenizer, load_tokenizer
from iepile.modeling.prompts import PromptBuilder
from tiny_model import build_tiny_model
from iepile.training.recipe import SupervisedCollator, TokenBudgetBatchSampler, TrainConfig, encode_rows, read_rows, train

CONLL_TYPES = ["location", "misc", "organisation", "person"]


# ---- fixtures: a tiny model and real converted data ------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def train_one_thread():
    """The tiny model's matrices are too small for two threads to help; on a busy 2-core machine OpenMP threads
    waiting for each other make every step many times slower. One thread keeps this file fast and steady."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def train_tiny_model(tmp_path_factory) -> pathlib.Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


def conll_records(path: pathlib.Path, limit: int) -> list[dict]:
    """CoNLL-2003 sentences as unified NER records, read by iepile's own CoNLL reader."""
    from iepile.data.formats import read_records
    from iepile.data.formats.base import ReadOptions, ReadStats

    return list(itertools.islice(read_records(path, "conll", ReadOptions(task="NER", language="en"), ReadStats()),
                                 limit))


def write_jsonl(path: pathlib.Path, rows: list[dict]) -> pathlib.Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def train_conll_files(tmp_path_factory, data_dir) -> tuple[pathlib.Path, pathlib.Path]:
    """Train (96 sentences) and validation (32 sentences) instruction files converted with ``iepile.convert``."""
    from iepile.convert import convert

    folder = tmp_path_factory.mktemp("conll")
    conll = data_dir / "en" / "ner" / "conll2003"
    files = []
    for split, limit in (("train", 96), ("dev", 32)):
        rows = convert(
            conll_records(conll / f"{split}.txt", limit),
            task="NER",
            language="en",
            schema=CONLL_TYPES,
            split="train",
            source="conll2003",
        )
        files.append(write_jsonl(folder / f"{split}.jsonl", rows))
    return files[0], files[1]


def tiny_config(model: pathlib.Path, train_file, output: pathlib.Path, **overrides) -> TrainConfig:
    settings = dict(
        train_file=str(train_file),
        output_dir=str(output),
        model=str(model),
        dtype="fp32",
        batch_size=4,
        learning_rate=5e-3,
        lora_r=16,
        warmup_ratio=0.0,
        logging_steps=1,
        save_steps=1000,
        progress=False,
        cutoff_len=256,
    )
    return TrainConfig(**{**settings, **overrides})


def saved_tensors(folder) -> dict[str, torch.Tensor]:
    """Every tensor a run saved: an adapter folder (adapter_model.safetensors) or a model folder (its shards)."""
    from safetensors.torch import load_file

    files = sorted(pathlib.Path(folder).glob("*.safetensors"))
    assert files, f"no weights in {folder}"
    return {name: t for f in files for name, t in load_file(str(f)).items()}


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


# ---- data handling -----------------------------------------------------------------------------------------------


def test_bad_rows_name_file_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "a"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: field 'output' missing"):
        read_rows(path)
    path.write_text('{"instruction": "a", "output": 3}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: field 'output' must be a string, not int"):
        read_rows(path)
    path.write_text('{"instruction": "a", "output": "b"}\n\n{not json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:3: not valid JSON"):
        read_rows(path)


def test_encode_rows_counts_truncated_and_dropped_rows(train_conll_files):
    rows = read_rows(train_conll_files[0])
    builder = PromptBuilder(load_tokenizer(padding_side="right"))
    config = TrainConfig(train_file="-", output_dir="-", max_source_length=100, max_target_length=30, cutoff_len=130)
    examples, report = encode_rows(rows, builder, config)
    assert report["rows"] == len(rows) == 96
    assert report["truncated"] > 0 and report["dropped_target_too_long"] > 0
    assert report["examples"] == len(examples) == report.get("kept", 0) + report["truncated"]
    assert report["examples"] + report["dropped_target_too_long"] + report.get("dropped_prompt_too_long", 0) == 96
    assert all(len(e["input_ids"]) <= 130 for e in examples)
    assert all(e["labels"].count(-100) <= 100 for e in examples)


def test_validation_slice_is_seeded_and_disjoint(train_conll_files):
    from iepile.training.recipe import read_data as _read_data

    config = TrainConfig(train_file=str(train_conll_files[0]), output_dir="-", val_size=10, seed=3)
    train_rows, valid_rows = _read_data(config)
    again_train, again_valid = _read_data(config)
    assert len(valid_rows) == 10 and len(train_rows) == 86
    assert [r["line"] for r in valid_rows] == [r["line"] for r in again_valid]
    assert not {r["line"] for r in train_rows} & {r["line"] for r in valid_rows}


def test_collator_pads_labels_with_ignore_and_marks_answer_positions():
    collator = SupervisedCollator(pad_token_id=0, batching="padded")
    batch = collator(
        [{"input_ids": [5, 6, 7, 8], "labels": [-100, -100, 7, 8]}, {"input_ids": [9, 10], "labels": [-100, 10]}]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8], [9, 10, 0, 0]]
    assert batch["labels"].tolist() == [[-100, -100, 7, 8], [-100, 10, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    # logits are computed only where the NEXT token is an answer token
    assert batch["logits_to_keep"].tolist() == [[False, True, True, False], [True, False, False, False]]
    assert batch["shift_labels"].tolist() == [7, 8, 10]


def test_packed_batches_do_not_leak_attention_between_examples(train_tiny_model):
    model, _ = load_model_and_tokenizer(str(train_tiny_model), dtype="fp32", for_training=True)
    model.config.use_cache = False
    features = [
        {"input_ids": [11, 12, 13, 14, 15, 16], "labels": [-100, -100, -100, 14, 15, 16]},
        {"input_ids": [21, 22, 23, 24], "labels": [-100, -100, 23, 24]},
        {"input_ids": [31, 32, 33, 34, 35], "labels": [-100, 32, 33, 34, 35]},
    ]
    packed = SupervisedCollator(0, "packed")(features)
    padded = SupervisedCollator(0, "padded")(features)
    assert packed["position_ids"].tolist() == [[0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 0, 1, 2, 3, 4]]
    assert packed["shift_labels"].tolist() == padded["shift_labels"].tolist()
    with torch.no_grad():
        packed_logits = model(**{k: v for k, v in packed.items() if k not in ("labels", "shift_labels")}).logits
        padded_logits = model(**{k: v for k, v in padded.items() if k not in ("labels", "shift_labels")}).logits
    torch.testing.assert_close(packed_logits, padded_logits, atol=1e-5, rtol=1e-5)


# ---- training runs -----------------------------------------------------------------------------------------------


def test_tiny_model_training_lowers_validation_loss(train_tiny_model, train_conll_files, tmp_path):
    train_file, valid_file = train_conll_files
    output = tmp_path / "run"
    result = train(tiny_config(train_tiny_model, train_file, output, valid_file=str(valid_file), max_steps=24))
    assert result.global_step == 24
    assert result.eval_loss < result.initial_eval_loss - 0.3
    assert result.data_report["train"]["examples"] == 96 and result.data_report["valid"]["examples"] == 32
    # outputs: adapter in HF format with our metadata, the exact config, metrics, loss curve
    assert (output / "adapter" / "adapter_config.json").is_file()
    assert json.loads((output / "adapter" / "iepile.json").read_text())["base_model"] == str(train_tiny_model)
    saved = json.loads((output / "train_config.json").read_text())
    assert saved["config"]["max_steps"] == 24 and saved["resolved"]["model_type"] == "llama"
    assert saved["resolved"]["lora_targets"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    metrics = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["step"] == 0 and "eval_loss" in metrics[0]
    assert [m["step"] for m in metrics if "loss" in m] == list(range(1, 25))
    assert (output / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gradient_accumulation_equals_a_bigger_batch(train_tiny_model, train_conll_files, tmp_path):
    """The loss is normalised by the answer tokens of the whole accumulated batch, as in one big batch."""
    train_file = write_jsonl(tmp_path / "eight.jsonl", read_rows(train_conll_files[0])[:8])
    settings = dict(max_steps=2, batching="padded", learning_rate=1e-2)
    big = train(tiny_config(train_tiny_model, train_file, tmp_path / "big", batch_size=8, **settings))
    accumulated = train(
        tiny_config(train_tiny_model, train_file, tmp_path / "accumulated", batch_size=4, grad_accum=2, **settings)
    )
    assert max_difference(saved_tensors(big.saved_dir), saved_tensors(accumulated.saved_dir)) < 1e-5


class SimulatedCrash(RuntimeError):
    pass


def test_token_budget_batches_cover_every_example_within_the_cap():
    lengths = [7, 300, 12, 700, 150, 150, 40, 699, 3, 512, 90, 91] * 5
    sampler = TokenBudgetBatchSampler(lengths, max_tokens=1024, max_examples=8, seed=1)
    epoch0 = list(sampler)
    assert sorted(i for batch in epoch0 for i in batch) == list(range(len(lengths)))  # each example once
    for batch in epoch0:
        assert len(batch) <= 8 and len(batch) * max(lengths[i] for i in batch) <= 1024
    assert len(sampler) == len(epoch0)
    assert epoch0 == list(TokenBudgetBatchSampler(lengths, 1024, 8, seed=1))  # seeded
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch1 != epoch0 and sorted(map(tuple, epoch1)) == sorted(map(tuple, epoch0))  # reordered, same batches
    with pytest.raises(ValueError, match="at least cutoff_len"):
        TrainConfig(train_file="x", output_dir="y", batch_tokens=100, cutoff_len=256).validate()


def test_token_budget_training_resumes_with_the_same_batches(train_tiny_model, train_conll_files, tmp_path):
    train_file = write_jsonl(tmp_path / "rows.jsonl", read_rows(train_conll_files[0])[:24])
    settings = dict(max_steps=4, save_steps=2, batch_size=16, batch_tokens=256, record_batches=True)
    reference = train(tiny_config(train_tiny_model, train_file, tmp_path / "reference", **settings))
    batches = json.loads((tmp_path / "reference" / "batches-rank0.json").read_text())
    assert len(batches) < 4 * 16  # the token cap, not batch_size, decided the batch sizes

    crashed = tmp_path / "crashed"
    with pytest.raises(SimulatedCrash):
        train(tiny_config(train_tiny_model, train_file, crashed, **settings), callbacks=[crash_after_saving(2)])
    resumed = train(tiny_config(train_tiny_model, train_file, crashed, resume=True, **settings))
    assert resumed.global_step == reference.global_step == 4
    assert max_difference(saved_tensors(resumed.saved_dir), saved_tensors(reference.saved_dir)) < 1e-6


def crash_after_saving(step: int):
    from transformers import TrainerCallback

    class CrashAfterSaving(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise SimulatedCrash(f"killed after the checkpoint of step {step}")

    return CrashAfterSaving()


def test_resume_after_a_crash_continues_with_the_same_steps_and_data(train_tiny_model, train_conll_files, tmp_path):
    train_file = write_jsonl(tmp_path / "twelve.jsonl", read_rows(train_conll_files[0])[:12])
    settings = dict(max_steps=6, save_steps=2, lora_dropout=0.1, record_batches=True)  # 3 steps per epoch
    reference = train(tiny_config(train_tiny_model, train_file, tmp_path / "reference", **settings))

    crashed = tmp_path / "crashed"
    with pytest.raises(SimulatedCrash):
        train(tiny_config(train_tiny_model, train_file, crashed, **settings), callbacks=[crash_after_saving(4)])
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny_config(train_tiny_model, train_file, crashed, **settings))
    with pytest.raises(ValueError, match="learning_rate"):
        train(tiny_config(train_tiny_model, train_file, crashed, resume=True, **{**settings, "learning_rate": 1e-3}))
    resumed = train(tiny_config(train_tiny_model, train_file, crashed, resume=True, **settings))

    assert resumed.global_step == reference.global_step == 6
    assert max_difference(saved_tensors(resumed.saved_dir), saved_tensors(reference.saved_dir)) < 1e-6
    reference_batches = json.loads((tmp_path / "reference" / "batches-rank0.json").read_text())
    resumed_batches = json.loads((crashed / "batches-rank0.json").read_text())
    assert resumed_batches == reference_batches[-8:]  # steps 5 and 6, same examples in the same order
    logged = [json.loads(line) for line in (crashed / "metrics.jsonl").read_text().splitlines()]
    reference_logged = [json.loads(line) for line in (tmp_path / "reference" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in logged if "loss" in m] == [1, 2, 3, 4, 5, 6]
    assert [round(m["loss"], 5) for m in logged if "loss" in m] == [
        round(m["loss"], 5) for m in reference_logged if "loss" in m
    ]


# ---- checkpoints: whole or absent, and a resume that takes the newest whole one -------------------------------------

CHECKPOINT_SETTINGS = dict(max_steps=6, save_steps=2)

# A real training process that freezes itself (SIGSTOP) in the middle of writing the checkpoint of a step: the
# model is written, the optimizer state is not yet. The test then kills it with -9, as a crash would.
STOP_MID_CHECKPOINT = """
import json, os, signal, sys
from transformers import Trainer
from iepile.training.recipe import TrainConfig, train

save_optimizer = Trainer._save_optimizer_and_scheduler

def stop_mid_checkpoint(self, output_dir):
    if self.state.global_step == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGSTOP)
    save_optimizer(self, output_dir)

Trainer._save_optimizer_and_scheduler = stop_mid_checkpoint
train(TrainConfig(**json.loads(sys.argv[1])))
"""


@pytest.fixture(scope="module")
def checkpoint_reference(train_tiny_model, train_conll_files, tmp_path_factory):
    """Twelve rows and an uninterrupted six-step run: what every interrupted run must end with."""
    folder = tmp_path_factory.mktemp("checkpoint-reference")
    train_file = write_jsonl(folder / "twelve.jsonl", read_rows(train_conll_files[0])[:12])
    return train_file, train(tiny_config(train_tiny_model, train_file, folder / "run", **CHECKPOINT_SETTINGS))


def test_killed_while_writing_a_checkpoint_resumes_from_the_previous_complete_one(train_tiny_model,
                                                                                checkpoint_reference, tmp_path):
    import dataclasses

    from process_support import process_state, wait_for

    train_file, reference = checkpoint_reference
    crashed = tmp_path / "crashed"
    config = dataclasses.asdict(tiny_config(train_tiny_model, train_file, crashed, **CHECKPOINT_SETTINGS))
    with open(tmp_path / "stderr.txt", "wb") as stderr:
        process = subprocess.Popen([sys.executable, "-c", STOP_MID_CHECKPOINT, json.dumps(config), "4"],
                                   env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"},
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_for(lambda: process_state(process.pid) == "T", "the run stopped in the checkpoint of step 4",
                 process, log=tmp_path / "stderr.txt")
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    checkpoints = crashed / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == [".incomplete-checkpoint-4", "checkpoint-2"]

    resumed = train(tiny_config(train_tiny_model, train_file, crashed, resume=True, **CHECKPOINT_SETTINGS))
    assert resumed.resume_notes == [
        f"removed {checkpoints / '.incomplete-checkpoint-4'}: a checkpoint still being written when the run stopped",
        f"resuming from {checkpoints / 'checkpoint-2'}"]
    assert resumed.global_step == reference.global_step == 6
    assert max_difference(saved_tensors(resumed.saved_dir), saved_tensors(reference.saved_dir)) < 1e-6
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-4", "checkpoint-6"]  # rotation: 2 kept


class SteppingClock:
    """A clock for the time cap: the first reading is 0, each later one ``seconds`` after the last, or ``later``
    seconds after the first ``fast`` steps (a run whose first steps are faster than the rest, as length-grouped
    batches can be). The cap's decisions are tested, not timings."""

    def __init__(self, seconds: float = 10.0, later: float | None = None, fast: int = 2):
        self.now, self.readings, self.seconds, self.later, self.fast = 0.0, 0, seconds, later, fast

    def __call__(self) -> float:
        self.readings += 1
        if self.readings > 1:
            slow = self.later is not None and self.readings > self.fast + 1
            self.now += self.later if slow else self.seconds
        return self.now


def logged_learning_rates(run: pathlib.Path) -> dict[int, float]:
    lines = (json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines())
    return {line["step"]: line["learning_rate"] for line in lines if "learning_rate" in line}


def test_a_time_cap_fits_the_cosine_schedule_to_the_steps_that_fit(train_tiny_model, train_conll_files, tmp_path):
    """30 steps asked, 100 s allowed, 10 s a step: after 2 calibration steps the schedule is refitted to end at step
    10, where training stops; from step 3 on, the learning rates are those of a run asked for 10 steps."""
    from iepile.training.callbacks import DeadlineCallback

    train_file = write_jsonl(tmp_path / "rows.jsonl", read_rows(train_conll_files[0])[:16])
    settings = dict(lr_scheduler="cosine", learning_rate=1e-2)
    deadline = DeadlineCallback(100.0, fit_schedule=True, calibration_steps=2, margin=1.0,
                                clock=SteppingClock())
    fitted = train(tiny_config(train_tiny_model, train_file, tmp_path / "fitted", max_steps=30, **settings),
                   callbacks=[deadline])
    assert (deadline.fitted_steps, fitted.global_step, deadline.hit) == (10, 10, False)
    reference = train(tiny_config(train_tiny_model, train_file, tmp_path / "ten", max_steps=10, **settings))
    fitted_rates, reference_rates = (logged_learning_rates(pathlib.Path(r.output_dir)) for r in (fitted, reference))
    assert fitted_rates[2] > reference_rates[2]  # steps 1-2 follow the slower 30-step cosine
    assert {k: v for k, v in fitted_rates.items() if k >= 3} == pytest.approx(
        {k: v for k, v in reference_rates.items() if k >= 3})
    assert fitted_rates[10] == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * 9 / 10)))  # the last step's


def test_a_token_cap_stops_at_the_step_that_reaches_it_with_the_schedule_fitted(train_tiny_model, train_conll_files,
                                                                                tmp_path):
    """One row 16 times: every step trains the same tokens s. A cap of 10.5 s: after 2 calibration steps the
    schedule is fitted to 11 steps, and training stops there, at the first step whose tokens reach the cap."""
    from iepile.training.callbacks import DeadlineCallback

    row = read_rows(train_conll_files[0])[0]
    train_file = write_jsonl(tmp_path / "same.jsonl", [row] * 16)
    config = tiny_config(train_tiny_model, train_file, tmp_path / "capped", max_steps=30, lr_scheduler="cosine")
    examples, _ = encode_rows(read_rows(train_file), PromptBuilder(load_tokenizer(str(train_tiny_model))), config)
    per_step = config.batch_size * len(examples[0]["input_ids"])
    deadline = DeadlineCallback(None, fit_schedule=True, calibration_steps=2, tokens=int(10.5 * per_step))
    result = train(config, callbacks=[deadline])
    assert (deadline.fitted_steps, result.global_step, deadline.stopped_by) == (11, 11, "tokens")
    assert result.tokens_seen == 11 * per_step
    rates = logged_learning_rates(pathlib.Path(result.output_dir))
    assert rates[11] == pytest.approx(config.lr * 0.5 * (1 + math.cos(math.pi * 10 / 11)))  # the 11-step cosine's last


def test_the_schedule_is_refitted_when_the_steps_slow_down(train_tiny_model, train_conll_files, tmp_path):
    """100 s allowed, 10 s a step for two steps and 20 s after: the fit after step 2 (10 steps) is corrected after
    step 4 (60 s for 4 steps: 2 more fit) and training ends at step 6 as the cap runs out, instead of being stopped
    by the clock at step 7 of a 10-step schedule with its learning rate still high."""
    from iepile.training.callbacks import DeadlineCallback

    train_file = write_jsonl(tmp_path / "rows.jsonl", read_rows(train_conll_files[0])[:16])
    deadline = DeadlineCallback(100.0, fit_schedule=True, calibration_steps=2, margin=1.0,
                                clock=SteppingClock(later=20.0))
    result = train(tiny_config(train_tiny_model, train_file, tmp_path / "slowing", max_steps=30,
                               lr_scheduler="cosine", learning_rate=1e-2), callbacks=[deadline])
    assert (deadline.fitted_steps, result.global_step, deadline.hit) == (6, 6, False)
    rates = logged_learning_rates(pathlib.Path(result.output_dir))
    assert rates[6] == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * 5 / 6)))  # the 6-step cosine's last


def test_a_truncated_checkpoint_is_skipped_with_a_message_not_a_traceback(train_tiny_model, checkpoint_reference,
                                                                          tmp_path):
    train_file, reference = checkpoint_reference
    crashed = tmp_path / "crashed"
    with pytest.raises(SimulatedCrash):
        train(tiny_config(train_tiny_model, train_file, crashed, **CHECKPOINT_SETTINGS),
              callbacks=[crash_after_saving(4)])
    last = crashed / "checkpoints" / "checkpoint-4"
    weights = last / "adapter_model.safetensors"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[:size // 2])  # a disk that filled up, a copy cut short

    resumed = train(tiny_config(train_tiny_model, train_file, crashed, resume=True, **CHECKPOINT_SETTINGS))
    assert resumed.resume_notes == [
        f"skipped {last}: adapter_model.safetensors is {size // 2} bytes, {size} when it was saved (truncated or "
        "damaged)", f"resuming from {crashed / 'checkpoints' / 'checkpoint-2'}"]
    assert max_difference(saved_tensors(resumed.saved_dir), saved_tensors(reference.saved_dir)) < 1e-6


def test_checkpoints_without_a_marker_are_checked_by_their_files(checkpoint_reference, tmp_path):
    """Checkpoints of older versions have no completion marker: whole ones still resume, damaged ones are named."""
    import shutil

    from iepile.training.checkpoints import COMPLETE_MARKER, checkpoint_problem

    source = pathlib.Path(checkpoint_reference[1].output_dir) / "checkpoints" / "checkpoint-6"
    legacy = shutil.copytree(source, tmp_path / "checkpoint-6")
    (legacy / COMPLETE_MARKER).unlink()
    assert checkpoint_problem(legacy) is None
    optimizer = legacy / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:-100])
    assert checkpoint_problem(legacy) == "optimizer.pt is not a whole torch archive (truncated?)"
    weights = legacy / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert checkpoint_problem(legacy).startswith("adapter_model.safetensors cannot be read")
    (legacy / "trainer_state.json").write_text('{"global_st')
    assert checkpoint_problem(legacy).startswith("incomplete: no completion marker")


@pytest.fixture(scope="module")
def train_adapter_run(train_tiny_model, train_conll_files, tmp_path_factory):
    train_file, valid_file = train_conll_files
    output = tmp_path_factory.mktemp("adapter-run")
    return train(
        tiny_config(train_tiny_model, train_file, output, valid_file=str(valid_file), max_steps=8, template="alpaca")
    )


def test_adapter_reloads_and_merges_to_the_same_logits(train_adapter_run, train_tiny_model, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from iepile.training.export import export_merged

    tokens = torch.tensor([[1, 4093, 198, 28120, 30, 2, 198, 1, 520, 9531, 198]])
    base = AutoModelForCausalLM.from_pretrained(train_tiny_model, dtype=torch.float32).eval()
    with torch.no_grad():
        base_logits = base(tokens).logits
        peft_logits = PeftModel.from_pretrained(base, train_adapter_run.saved_dir).eval()(tokens).logits
        merged_model, _ = load_model_and_tokenizer(adapter=train_adapter_run.saved_dir, dtype="fp32")
        merged_logits = merged_model(tokens).logits
        exported = export_merged(train_adapter_run.saved_dir, tmp_path / "merged", dtype="fp32")
        plain = AutoModelForCausalLM.from_pretrained(exported)  # no peft involved
        exported_logits = plain(tokens).logits
    assert not torch.allclose(base_logits, peft_logits, atol=1e-3)  # the adapter does something
    torch.testing.assert_close(merged_logits, peft_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(exported_logits, peft_logits, atol=1e-4, rtol=1e-4)
    assert not any(name.startswith("adapter") for name in os.listdir(exported))
    assert json.loads((exported / "iepile.json").read_text())["template"] == "alpaca"


def test_init_adapter_continues_from_the_adapter(train_adapter_run, train_tiny_model, train_conll_files, tmp_path):
    train_file, valid_file = train_conll_files
    config = tiny_config(
        train_tiny_model, train_file, tmp_path / "continued", valid_file=str(valid_file), max_steps=4,
        init_adapter=train_adapter_run.saved_dir,
    )
    continued = train(config)
    assert config.template == "alpaca"  # taken from the adapter's iepile.json
    assert continued.initial_eval_loss == pytest.approx(train_adapter_run.eval_loss, abs=1e-4)
    assert continued.eval_loss < continued.initial_eval_loss


def test_full_fine_tuning_saves_a_plain_model(train_tiny_model, train_conll_files, tmp_path):
    from transformers import AutoModelForCausalLM

    result = train(
        tiny_config(train_tiny_model, train_conll_files[0], tmp_path / "full", finetuning="full", max_steps=3)
    )
    assert pathlib.Path(result.saved_dir).name == "model"
    trained = AutoModelForCausalLM.from_pretrained(result.saved_dir, dtype=torch.float32)
    initial = AutoModelForCausalLM.from_pretrained(train_tiny_model, dtype=torch.float32)
    changed = [
        name for name, p in trained.named_parameters() if not torch.equal(p, dict(initial.named_parameters())[name])
    ]
    assert "model.layers.0.self_attn.q_proj.weight" in changed


def test_compiled_training_learns_the_same_adapter(train_tiny_model, train_conll_files, tmp_path):
    """--compile (one compiled decoder block for every layer and every batch width) changes the speed, not the
    result: same steps on the same batches give the same adapter, saved under the same names."""
    from torch._dynamo.utils import counters

    settings = dict(max_steps=4, batching="padded", learning_rate=1e-2)  # random batches of differing widths
    eager = train(tiny_config(train_tiny_model, train_conll_files[0], tmp_path / "eager", **settings))
    counters.clear()
    compiled = train(tiny_config(train_tiny_model, train_conll_files[0], tmp_path / "compiled", compile=True,
                                 **settings))
    assert counters["stats"]["unique_graphs"] > 0  # it did compile
    assert max_difference(saved_tensors(eager.saved_dir), saved_tensors(compiled.saved_dir)) < 1e-4


def test_compile_without_a_cpp_compiler_is_refused_before_training():
    from torch._inductor import config as inductor_config
    from torch._inductor.cpp_builder import cpp_compiler_search

    cpp_compiler_search.cache_clear()
    try:  # config.patch, not monkeypatch: its undo would leave cpp.cxx unreadable for later compiling tests
        with inductor_config.patch({"cpp.cxx": (None, "/nonexistent/g++")}):
            with pytest.raises(ValueError, match=r"--compile needs a C\+\+ compiler"):
                TrainConfig(train_file="x", output_dir="y", compile=True).validate()
    finally:
        cpp_compiler_search.cache_clear()


DDP_SCRIPT = """
import sys
from iepile.training.recipe import TrainConfig, train
model, train_file, output = sys.argv[1:4]
train(TrainConfig(train_file=train_file, output_dir=output, model=model, dtype="fp32", batch_size=4,
                  learning_rate=1e-2, lora_r=16, cutoff_len=256, lora_dropout=0.0, warmup_ratio=0.0, max_steps=3, logging_steps=1,
                  save_steps=1000, progress=False, batching="padded", record_batches=True))
"""


def run_process_group(command: list[str], environment: dict, timeout: float = 300) -> tuple[int, str]:
    """Run torchrun in its own process group, so a hang kills the launcher AND its worker processes."""
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        return -1, "timed out\n" + stderr
    return process.returncode, stderr


def test_two_process_data_parallel_matches_one_process(train_tiny_model, train_conll_files, tmp_path):
    """torchrun, 2 CPU processes (gloo), 4 examples each = one process with 8 per step."""
    train_file = write_jsonl(tmp_path / "eight.jsonl", read_rows(train_conll_files[0])[:8])
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    returncode, stderr = run_process_group(
        [*torchrun, str(script), str(train_tiny_model), str(train_file), str(tmp_path / "ddp")], environment
    )
    assert returncode == 0, stderr[-3000:]
    single = train(
        tiny_config(train_tiny_model, train_file, tmp_path / "single", batch_size=8, learning_rate=1e-2,
                    lora_dropout=0.0, max_steps=3, batching="padded")
    )
    rank0 = json.loads((tmp_path / "ddp" / "batches-rank0.json").read_text())
    rank1 = json.loads((tmp_path / "ddp" / "batches-rank1.json").read_text())
    for step in range(3):  # each step: the ranks split the 8 examples between them
        seen0, seen1 = set(rank0[4 * step : 4 * step + 4]), set(rank1[4 * step : 4 * step + 4])
        assert not seen0 & seen1 and seen0 | seen1 == set(range(8))
    difference = max_difference(saved_tensors(tmp_path / "ddp" / "adapter"), saved_tensors(single.saved_dir))
    assert difference < 1e-4


def test_cli_reports_bad_input(tmp_path):
    from typer.testing import CliRunner

    from iepile.cli import app

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "x"}\n')
    result = CliRunner().invoke(app, ["train", str(bad), "--output", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "bad.jsonl:1: field 'output' missing" in " ".join(result.output.split())
    assert "Loading weights" not in result.output  # bad input fails before a model is loaded


# ---- the one test that loads the real default model --------------------------------------------------------------


@pytest.mark.slow
def test_default_model_converts_once_and_trains_with_lora(train_conll_files, tmp_path):
    from transformers import AutoConfig

    from iepile.modeling.loading import default_model_path

    folder = default_model_path()
    assert default_model_path() == folder  # cached
    config = AutoConfig.from_pretrained(folder)
    assert getattr(config, "quantization_config", None) is None and config.model_type == "llama"
    train_file = write_jsonl(tmp_path / "four.jsonl", read_rows(train_conll_files[0])[:4])
    result = train(
        TrainConfig(train_file=str(train_file), output_dir=str(tmp_path / "real"), max_steps=2, batch_size=2,
                    progress=False, logging_steps=1, save_steps=1000)
    )
    assert result.global_step == 2 and 0 < result.train_loss < 10
    assert (pathlib.Path(result.saved_dir) / "adapter_model.safetensors").is_file()
