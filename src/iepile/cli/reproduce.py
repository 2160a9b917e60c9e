"""``iepile reproduce``: run a recipe manifest (``recipes/*.yaml``) step by step, cached and resumable."""

from __future__ import annotations

from typing import List, Optional

import typer

from iepile.cli.console import print_error


def register(app: typer.Typer) -> None:
    app.command("reproduce")(reproduce_command)


def reproduce_command(
    recipe: str = typer.Argument(..., help="Recipe manifest, e.g. recipes/reproduce.yaml."),
    data: Optional[str] = typer.Option(None, "--data", help="Data root (default: the recipe's data:, relative to "
                                       "the recipe)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Base model: local HF folder or .gguf "
                                        "(default: the recipe's, SmolLM2-135M-Instruct)."),
    budget_scale: float = typer.Option(1.0, "--budget-scale", help="Multiply training steps, the time cap and the "
                                       "test sample caps (e.g. 0.05 for a quick run; output in "
                                       "runs/<name>-scale<x>)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Run folder (default: runs/<recipe name>)."),
    settings: List[str] = typer.Option([], "--set", help="Override a recipe value: STEP.KEY=VALUE (YAML value), "
                                       "e.g. --set train.config.batch_size=4."),
    redo: List[str] = typer.Option([], "--redo", help="Rerun this step and every later step that reads it (their "
                                   "folders are removed first)."),
    until: Optional[str] = typer.Option(None, "--until", help="Stop after this step (later steps are left as they "
                                        "are)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Build, train, predict and score as a recipe says; writes a results table (markdown + JSON)."""
    from rich.console import Console

    from iepile.recipes.manifest import RecipeError, parse_settings
    from iepile.recipes.runner import run_recipe

    console = Console(stderr=True)
    try:
        result = run_recipe(recipe, data=data, model=model, budget_scale=budget_scale, output=output,
                            settings=parse_settings(settings), redo=tuple(redo), until=until,
                            progress=not quiet)
    except (RecipeError, FileNotFoundError, FileExistsError) as error:
        print_error(console, error)
        raise typer.Exit(1) from None
    console.print(f"run folder: {result['output']}")
