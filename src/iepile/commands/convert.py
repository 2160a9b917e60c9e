"""``iepile convert``: raw IE records → IEPile instructions."""

from __future__ import annotations

from typing import Optional

import typer

from iepile.commands import print_error


def register(app: typer.Typer) -> None:
    app.command("convert")(convert_command)


def convert_command(
    src: str = typer.Argument(..., help="JSON-lines records (unified format); - for standard input."),
    dst: str = typer.Argument(..., help="Instruction JSON-lines output; - for standard output."),
    task: str = typer.Option(..., "--task", "-t", help="NER, RE, SPO, EE, EET, EEA or KG."),
    language: str = typer.Option("zh", "--language", "-l", help="Instruction language: en or zh."),
    schema: Optional[str] = typer.Option(None, "--schema", "-s", help="3-line schema.json or a JSON/YAML schema."),
    split: str = typer.Option("train", "--split", help="train (with output) or test (with id, label)."),
    source: Optional[str] = typer.Option(None, "--source", help="Dataset name; default: the input's folder name."),
    split_num: Optional[int] = typer.Option(None, "--split-num", help="Schema items per instruction (-1: all). "
                                            "Default per task: NER 6, KG 1, others 4."),
    neg_ratio: float = typer.Option(1.0, "--neg-ratio", help="Bernoulli rate of negative schema items (1 = all, "
                                    "0 = none, <0 = all without sampling)."),
    max_neg_per_pos: Optional[int] = typer.Option(None, "--max-neg-per-pos", help="At most K negative schema "
                                                  "items per positive one."),
    random_sort: bool = typer.Option(False, "--random-sort", help="Shuffle schema order (train) instead of sorting."),
    hard_negatives: Optional[str] = typer.Option(None, "--hard-negatives", help="Hard-negative dictionary "
                                                 "(flat, or nested task → dataset → dictionary)."),
    hard_negative_dataset: Optional[str] = typer.Option(None, "--hard-negative-dataset",
                                                        help="Section of a nested hard-negative dictionary."),
    seed: int = typer.Option(42, "--seed"),
    workers: int = typer.Option(1, "--workers", "-j", help="Worker processes (output is identical for any N)."),
    on_error: str = typer.Option("fail", "--on-error", help="fail: stop at the first bad record; skip: write it "
                                 "to <output>.rejects.jsonl and go on."),
) -> None:
    """Convert raw records into schema-based instructions, byte-compatible with the IEPile corpus."""
    from rich.console import Console
    from rich.table import Table

    from iepile.convert import ConvertOptions, convert_file
    from iepile.records import RecordError
    from iepile.schema import SchemaError

    console = Console(stderr=True)
    options = ConvertOptions(task=task, language=language, schema_path=schema, split=split, source=source,
                             split_num=split_num, neg_ratio=neg_ratio, max_neg_per_pos=max_neg_per_pos,
                             random_sort=random_sort, hard_negatives=hard_negatives,
                             hard_negative_dataset=hard_negative_dataset, seed=seed, workers=workers,
                             on_error=on_error)
    try:
        manifest = convert_file(src, dst, options)
    except (RecordError, SchemaError, ValueError, OSError) as err:
        print_error(console, err)
        if isinstance(err, RecordError) and on_error == "fail":
            console.print("Fix the record, or pass --on-error skip to write bad records to <output>.rejects.jsonl.")
        raise typer.Exit(1) from None
    stats = manifest["statistics"]
    table = Table(title=f"{task.upper()} {split} → {dst}", show_header=False)
    for key in ("records_in", "converted", "rejected", "records_without_instructions", "instructions",
                "negatives_per_positive"):
        table.add_row(key.replace("_", " "), str(stats[key]))
    console.print(table)
    for warning in manifest["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}")
    if stats["rejected"]:
        console.print(f"[yellow]{stats['rejected']} bad record(s) written to {dst}.rejects.jsonl[/]")
