"""Fine-tune a causal LM on IEPile instruction data (LoRA or full), on one CPU or many data-parallel processes.

A run reads top to bottom (like a torchtune recipe):

1. ``TrainConfig``: every knob, saved verbatim as ``train_config.json``.
2. Read the JSON-lines rows (``task, source, instruction, output``), hold out a validation slice if asked.
3. Encode them with the ONE prompt builder used at inference; prompts are masked out of the loss; examples that
   cannot fit are dropped and counted, over-long inputs are shortened inside the input text (see ``prompts.py``).
4. Load the model (bf16 weights on CPUs with native bf16), attach LoRA (or an existing adapter), or train fully.
5. Run the transformers ``Trainer`` (accelerate underneath: DDP under ``torchrun``, DeepSpeed/FSDP by config),
   with length-grouped or packed batches, checkpoints, resume, validation loss, a rich progress bar.
6. Save the adapter (or model) in Hugging Face format with ``iepile.json`` (base model, template), the metrics
   log and a loss-curve PNG.

Everything lands in ``--output``: ``adapter/`` or ``model/``, ``checkpoints/``, ``train_config.json``,
``data_report.json``, ``metrics.jsonl``, ``loss.png``.
"""

from __future__ import annotations

import os
import pathlib
import sys
import time

from iepile.training.callbacks import MetricsCallback, last_logged, plot_loss_curve, save_final, write_json
from iepile.training.config import BATCHING_MODES, LORA_TARGETS, TrainConfig, TrainResult
from iepile.training.data import (EpochSeededLengthGroupedSampler, SupervisedCollator, TokenBudgetBatchSampler,
                                  answer_positions, encode_rows, read_data, read_rows)
from iepile.training import prefix
from iepile.training.model import inherit_adapter_template, load_model, lora_targets, prompt_builder
from iepile.training.trainer import (answer_loss_trainer_class, config_record, is_main_process, prepare_output_dir,
                                     training_arguments, use_rich_progress)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

__all__ = ["BATCHING_MODES", "LORA_TARGETS", "EpochSeededLengthGroupedSampler", "SupervisedCollator",
           "TokenBudgetBatchSampler", "TrainConfig", "TrainResult", "answer_positions", "encode_rows", "lora_targets",
           "read_data", "read_rows", "train"]


# ---- 1. the run ----------------------------------------------------------------------------------------------------


def train(config: TrainConfig, *, callbacks: list | None = None) -> TrainResult:
    """Run one fine-tuning job described by ``config``; ``callbacks`` are extra ``TrainerCallback``s."""
    import transformers

    config.validate()
    inherit_adapter_template(config)
    output = pathlib.Path(config.output_dir)
    resume_from, resume_notes = prepare_output_dir(output, config)
    for note in resume_notes if is_main_process() else ():
        print(f"note: {note}", file=sys.stderr)
    transformers.set_seed(config.seed)

    train_rows, valid_rows = read_data(config)  # bad input fails before any model is loaded
    model, tokenizer = load_model(config)
    builder = prompt_builder(tokenizer, config)
    train_set, train_report = encode_rows(train_rows, builder, config)
    valid_set, valid_report = encode_rows(valid_rows, builder, config) if valid_rows else ([], None)
    data_report = {"train": train_report, "valid": valid_report}
    if not train_set:
        raise ValueError(f"{config.train_file}: no training example fits the length limits ({train_report})")

    args = training_arguments(config, output, has_valid=bool(valid_set))
    seen_indices: list[int] = []
    metrics = MetricsCallback(output / "metrics.jsonl", initial_eval=None)
    trainer = answer_loss_trainer_class()(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=valid_set or None,
        processing_class=tokenizer,
        data_collator=SupervisedCollator(tokenizer.pad_token_id, config.batching, seen_indices,
                                         share_prefix=config.shares_prefix),
        callbacks=[metrics, *(callbacks or [])],
    )
    trainer.batch_tokens = config.batch_tokens
    trainer.share_prefix = config.shares_prefix
    if config.compile and config.shares_prefix:
        prefix.compile_blocks_for_prefixes()
    use_rich_progress(trainer, config)
    if trainer.is_world_process_zero():
        write_json(output / "train_config.json", config_record(config, model, builder))
        write_json(output / "data_report.json", data_report)
    if valid_set and resume_from is None:
        metrics.initial_eval = trainer.evaluate()  # step-0 validation loss: the baseline of the loss curve

    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    train_seconds = time.perf_counter() - started
    final_eval = trainer.evaluate() if valid_set else None

    saved_dir = save_final(trainer, output, config, builder)
    if config.record_batches:
        write_json(output / f"batches-rank{args.process_index}.json", seen_indices)
    if trainer.is_world_process_zero():
        metrics.rewrite(trainer.state.log_history)
        plot_loss_curve(trainer.state.log_history, output / "loss.png")
    return TrainResult(
        output_dir=str(output),
        saved_dir=str(saved_dir),
        global_step=trainer.state.global_step,
        train_loss=last_logged(trainer.state.log_history, "train_loss"),
        eval_loss=final_eval["eval_loss"] if final_eval else None,
        initial_eval_loss=metrics.initial_eval["eval_loss"] if metrics.initial_eval else None,
        data_report=data_report,
        tokens_seen=int(trainer.state.num_input_tokens_seen),
        train_seconds=train_seconds,
        resume_notes=resume_notes,
    )
