"""``iepile convert``: raw IE records → IEPile instructions."""

from __future__ import annotations

import typer

from iepile.cli.console import print_error


def register(app: typer.Typer) -> None:
    from iepile.config import typer_command
    from iepile.convert import ConvertOptions

    app.command("convert")(typer_command(ConvertOptions, run_convert, doc=run_convert.__doc__, extra={
        "src": (str, typer.Argument(..., metavar="SRC", help="JSON-lines records (unified format); - for standard "
                                    "input.")),
        "dst": (str, typer.Argument(..., metavar="DST", help="Instruction JSON-lines output; - for standard "
                                    "output."))}))


def run_convert(options, *, src: str, dst: str) -> None:
    """Convert raw records into schema-based instructions, byte-compatible with the IEPile corpus."""
    from rich.console import Console
    from rich.table import Table

    from iepile.convert import convert_file
    from iepile.records import RecordError
    from iepile.schema import SchemaError

    console = Console(stderr=True)
    try:
        manifest = convert_file(src, dst, options)
    except (RecordError, SchemaError, ValueError, OSError) as err:
        print_error(console, err)
        if isinstance(err, RecordError) and options.on_error == "fail":
            console.print("Fix the record, or pass --on-error skip to write bad records to <output>.rejects.jsonl.")
        raise typer.Exit(1) from None
    stats = manifest["statistics"]
    table = Table(title=f"{options.task.upper()} {options.split} → {dst}", show_header=False)
    for key in ("records_in", "converted", "rejected", "records_without_instructions", "instructions",
                "negatives_per_positive"):
        table.add_row(key.replace("_", " "), str(stats[key]))
    console.print(table)
    for warning in manifest["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}")
    if stats["rejected"]:
        console.print(f"[yellow]{stats['rejected']} bad record(s) written to {dst}.rejects.jsonl[/]")
