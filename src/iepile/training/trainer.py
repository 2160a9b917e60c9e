"""The transformers Trainer of a run: its arguments, the answer-only loss, token-budget batches, resume checks."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any

from iepile.config import resume_ignored
from iepile.training.callbacks import RichProgressCallback
from iepile.training.checkpoints import finish_checkpoint, newest_complete_checkpoint, remove_staging, staging_dir
from iepile.training.config import TrainConfig
from iepile.training.data import EpochSeededLengthGroupedSampler, TokenBudgetBatchSampler
from iepile.training import prefix
from iepile.training.model import lora_targets

# ---- 4. trainer ----------------------------------------------------------------------------------------------------


def training_arguments(config: TrainConfig, output: pathlib.Path, *, has_valid: bool):
    import torch
    from transformers import TrainingArguments

    from iepile.modeling.loading import default_device, resolve_dtype

    device = default_device()
    compute_dtype = resolve_dtype(config.dtype, device)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    eval_steps = config.eval_steps or config.save_steps
    return TrainingArguments(
        output_dir=str(output / "checkpoints"),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        warmup_steps=config.warmup_ratio,
        lr_scheduler_type=config.lr_scheduler,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        bf16=compute_dtype == torch.bfloat16,
        fp16=compute_dtype == torch.float16,
        use_cpu=device == "cpu",
        ddp_backend="gloo" if distributed and device == "cpu" else None,
        ddp_find_unused_parameters=False if distributed else None,
        deepspeed=config.deepspeed,
        torch_compile=config.compile,
        seed=config.seed,
        data_seed=config.seed,
        train_sampling_strategy="group_by_length" if config.batching == "grouped" else "random",
        logging_steps=config.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if has_valid else "no",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        remove_unused_columns=False,
        prediction_loss_only=True,
        include_num_input_tokens_seen="all" if config.batching == "packed" else "non_padding",
        disable_tqdm=True,
        report_to="none",
        dataloader_num_workers=0,
    )


def prepare_output_dir(output: pathlib.Path, config: TrainConfig) -> tuple[str | None, list[str]]:
    """The checkpoint to resume from (the newest complete one) or None, and a note for each checkpoint skipped or
    removed on the way; refuses to silently mix two runs in one folder."""
    checkpoints = output / "checkpoints"
    notes = remove_staging(checkpoints) if checkpoints.is_dir() and is_main_process() else []
    last, skipped = newest_complete_checkpoint(checkpoints) if checkpoints.is_dir() else (None, [])
    if config.resume:
        check_same_config(output, config)
        notes += skipped
        if last is None and skipped:
            notes.append("no complete checkpoint: starting from step 0")
        elif last is not None:
            notes.append(f"resuming from {last}")
        return (str(last) if last else None), notes  # None: crashed before the first checkpoint, start over
    if (last or skipped) and not config.overwrite:
        raise FileExistsError(f"{output} already has checkpoints: pass --resume to continue or --overwrite")
    output.mkdir(parents=True, exist_ok=True)
    return None, notes


def is_main_process() -> bool:
    """Rank 0 under torchrun (the one process that tidies shared folders), or a plain run."""
    return os.environ.get("RANK", "0") == "0"


def check_same_config(output: pathlib.Path, config: TrainConfig) -> None:
    saved_file = output / "train_config.json"
    if not saved_file.is_file():
        return
    saved = json.loads(saved_file.read_text())["config"]
    current = dataclasses.asdict(config)
    changed = [k for k in current if k not in resume_ignored(TrainConfig) and k in saved and saved[k] != current[k]]
    if changed:
        details = ", ".join(f"{k}: {saved[k]!r} -> {current[k]!r}" for k in changed)
        raise ValueError(f"--resume with a different configuration than {saved_file} ({details})")


def use_rich_progress(trainer: Any, config: TrainConfig) -> None:
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    if config.progress:
        trainer.add_callback(RichProgressCallback())


def config_record(config: TrainConfig, model: Any, builder: Any) -> dict:
    """The exact configuration plus what it resolved to (model folder, targets, versions)."""
    import peft
    import torch
    import transformers

    from iepile.modeling.loading import resolve_model_path

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "config": dataclasses.asdict(config),
        "resolved": {
            "model_path": str(resolve_model_path(config.model)),
            "model_type": base.config.model_type,
            "template": builder.template_name or "tokenizer chat template",
            "learning_rate": config.lr,
            "lora_targets": lora_targets(base, config.lora_targets) if config.finetuning == "lora" else None,
            "trainable_parameters": trainable,
            "world_size": int(os.environ.get("WORLD_SIZE", "1")),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        },
    }


def answer_loss_trainer_class():
    """A Trainer whose loss is cross-entropy over the kept (answer) positions only, summed and divided by the
    number of answer tokens in the whole accumulated (and, with DDP, global) batch, like the stock Trainer."""
    import torch
    from transformers import Trainer

    class AnswerLossTrainer(Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_is_scaled_for_ga = True

        batch_tokens: int | None = None  # set by train(): TokenBudgetBatchSampler batches
        share_prefix: bool = False  # set by train(): batches grouped by prompt prefix, computed once a batch

        def prefix_groups(self, dataset) -> list[str] | None:
            return [e["group"] for e in dataset] if self.share_prefix else None

        def get_train_dataloader(self):
            if not self.batch_tokens:
                return super().get_train_dataloader()
            from torch.utils.data import DataLoader

            lengths = [len(e["input_ids"]) for e in self.train_dataset]
            sampler = TokenBudgetBatchSampler(lengths, self.batch_tokens, self.args.train_batch_size, self.args.seed,
                                              groups=self.prefix_groups(self.train_dataset))
            collator = self._get_collator_with_removed_columns(self.data_collator, description="Training")
            return self.accelerator.prepare(DataLoader(self.train_dataset, batch_sampler=sampler, collate_fn=collator,
                                                       num_workers=0))

        def _get_train_sampler(self, train_dataset=None):
            if self.args.train_sampling_strategy != "group_by_length":
                return super()._get_train_sampler(train_dataset)
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            group_size = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return EpochSeededLengthGroupedSampler([len(e["input_ids"]) for e in dataset], group_size, self.args.seed,
                                                   groups=self.prefix_groups(dataset))

        def _build_accelerator_args(self, **kwargs):
            """``--compile`` as accelerate's regional compilation with dynamic shapes: one decoder block is
            compiled and reused by every layer, once for every batch shape. Whole-model compilation recompiled for
            new batch shapes and took minutes of a run on two CPU cores; this takes seconds (bench/RESULTS.md)."""
            args = super()._build_accelerator_args(**kwargs)
            plugin = args.get("dynamo_plugin")
            if plugin is not None and self.args.torch_compile:
                plugin.use_regional_compilation = True
                plugin.dynamic = True
            return args

        staging: pathlib.Path | None = None  # set while a checkpoint is being written

        def _get_output_dir(self, trial):
            return str(self.staging) if self.staging else super()._get_output_dir(trial)

        def _save_checkpoint(self, model, trial):
            """The stock save, pointed at a hidden staging folder, then marked complete and renamed into place
            (see :mod:`iepile.training.checkpoints`); older checkpoints are rotated only after that."""
            from transformers.trainer_utils import rotate_checkpoints

            checkpoints = pathlib.Path(super()._get_output_dir(trial))
            self.staging = staging_dir(checkpoints, self.state.global_step)
            try:
                super()._save_checkpoint(model, trial)
            finally:
                self.staging, staging = None, self.staging
            self.accelerator.wait_for_everyone()  # every rank has written its part (its RNG state)
            if self.args.should_save:
                finish_checkpoint(staging, checkpoints, self.state.global_step)
                rotate_checkpoints(output_dir=str(checkpoints), save_total_limit=self.args.save_total_limit,
                                   best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)
            self.accelerator.wait_for_everyone()

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            targets = inputs.pop("shift_labels")
            inputs.pop("labels", None)
            outputs = prefix.forward(model, inputs)
            logits = outputs.logits.float().reshape(-1, outputs.logits.shape[-1])
            loss = torch.nn.functional.cross_entropy(logits, targets.to(logits.device), reduction="sum")
            if num_items_in_batch is None:
                loss = loss / max(targets.numel(), 1)
                if model.training:
                    loss = loss / self.current_gradient_accumulation_steps
            else:
                loss = loss / num_items_in_batch
                if self.args.average_tokens_across_devices and self.args.world_size > 1:
                    loss = loss * self.args.world_size  # DDP averages gradients over ranks
            return (loss, outputs) if return_outputs else loss

    return AnswerLossTrainer
