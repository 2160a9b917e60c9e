"""``iepile train`` (fine-tune on instruction lines) and ``iepile export`` (merge an adapter into its base)."""

from __future__ import annotations

import os
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    from iepile.config import typer_command
    from iepile.training.recipe import TrainConfig

    app.command("train")(typer_command(TrainConfig, run_train, arguments=("train_file",), doc=(
        "Fine-tune a model (LoRA or full) on IEPile instruction lines; runs unchanged under torchrun. Every option "
        "is a field of iepile.training.recipe.TrainConfig; --config FILE.yaml sets any of them.")))
    app.command("export")(export_command)


def run_train(config) -> None:
    from rich.console import Console

    from iepile.training.recipe import train

    console = Console(stderr=True)
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
    from iepile.training.export import export_merged

    try:
        saved = export_merged(adapter, output, model=model, dtype=dtype)
    except (ValueError, FileNotFoundError) as error:
        console.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(1) from None
    console.print(f"merged model saved to {saved}")
