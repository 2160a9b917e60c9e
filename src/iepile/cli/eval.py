"""``iepile eval``: score a prediction file; terminal table, optional JSON result file and HTML report."""

from __future__ import annotations

from typing import Optional

import typer

from iepile.cli.console import print_error


def register(app: typer.Typer) -> None:
    from iepile.config import typer_command
    from iepile.evaluate import EvalOptions

    app.command("eval")(typer_command(EvalOptions, run_eval, doc=run_eval.__doc__, extra={
        "pred": (str, typer.Argument(..., metavar="PRED", help="Prediction JSON lines (task, source, id, "
                                     "instruction, label, output); - for standard input.")),
        "json_out": (Optional[str], typer.Option(None, "--json", help="Write the full result document here.")),
        "report": (Optional[str], typer.Option(None, "--report", help="Write a self-contained HTML report here.")),
        "by_type": (bool, typer.Option(False, "--by-type", help="Also print the per-type table."))}))


def run_eval(options, *, pred: str, json_out: Optional[str], report: Optional[str], by_type: bool) -> None:
    """Score model answers: micro/macro P, R, F1 per task, source and type, with error analysis."""
    import json

    from rich.console import Console
    from rich.markup import escape

    from iepile.evaluate import EvalError, evaluate_file
    from iepile.evaluate.console import print_result
    from iepile.fileio import check_writable, naming_outputs, refuse_input_as_output, write_text_atomic

    console = Console(stderr=True)
    try:
        options.resolved_mode()
        for path, option in ((json_out, "--json"), (report, "--report")):
            if path:
                refuse_input_as_output(path, pred)
                check_writable(path, option)
        result = evaluate_file(pred, options)
    except (EvalError, ValueError, OSError) as err:
        print_error(console, err)
        raise typer.Exit(1) from None
    print_result(result, Console(), by_type=by_type)
    for message in result["problems"]["examples"]:  # only with --allow-missing: otherwise they failed the run
        console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)
    from iepile.evaluate.report import write_report

    writers = ((json_out, lambda: write_text_atomic(json_out, json.dumps(result, ensure_ascii=False, indent=2)),
                "result"), (report, lambda: write_report(result, report), "report"))
    for path, write, what in writers:
        if not path:
            continue
        try:
            with naming_outputs(path):
                write()
        except OSError as err:  # a full disk: the file written atomically keeps its previous content
            print_error(console, err)
            raise typer.Exit(1) from None
        console.print(f"{what} written to {path}")
