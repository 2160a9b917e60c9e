"""``iepile eval``: score a prediction file; terminal table, optional JSON result file and HTML report."""

from __future__ import annotations

from typing import Optional

import typer

from iepile.commands import print_error


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)


def eval_command(
    pred: str = typer.Argument(..., help="Prediction JSON lines (task, source, id, instruction, label, output); "
                                         "- for standard input."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="Score every line as this task (default: each "
                                       "line's task field)."),
    mode: str = typer.Option("iepile", "--mode", "-m", help="iepile (reference-compatible numbers), strict or "
                             "normalized."),
    json_out: Optional[str] = typer.Option(None, "--json", help="Write the full result document here."),
    report: Optional[str] = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
    ignore_off_schema: bool = typer.Option(False, "--ignore-off-schema", help="Drop answer keys that were not asked "
                                           "in that line's schema group (always counted)."),
    repair: Optional[bool] = typer.Option(None, "--repair/--no-repair", help="Lenient parsing (code fences, text "
                                          "around the JSON, json-repair). Default: off in iepile mode, on otherwise."),
    bootstrap: int = typer.Option(0, "--bootstrap", help="Resamples for 95% confidence intervals (e.g. 1000)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    examples: int = typer.Option(5, "--examples", help="Examples kept per error kind (JSON and report)."),
    by_type: bool = typer.Option(False, "--by-type", help="Also print the per-type table."),
    reference_gold: bool = typer.Option(False, "--reference-gold", help="Build gold tuples exactly like the reference "
                                        "(keeps its EE/EEA gold bugs: empty triggers and arguments, duplicate "
                                        "arguments, argument-less EEA events)."),
) -> None:
    """Score model answers: micro/macro P, R, F1 per task, source and type, with error analysis."""
    import json

    from rich.console import Console

    from iepile.evaluate import EvalError, EvalOptions, evaluate_file
    from iepile.evaluate.console import print_result
    from iepile.fileio import check_writable, refuse_input_as_output, write_text_atomic

    console = Console(stderr=True)
    options = EvalOptions(mode=mode, task=task, ignore_off_schema=ignore_off_schema, repair=repair,
                          bootstrap=bootstrap, seed=seed, examples=examples,
                          reference_gold=reference_gold)
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
    if json_out:
        write_text_atomic(json_out, json.dumps(result, ensure_ascii=False, indent=2))
        console.print(f"result written to {json_out}")
    if report:
        from iepile.evaluate.report import write_report

        write_report(result, report)
        console.print(f"report written to {report}")
