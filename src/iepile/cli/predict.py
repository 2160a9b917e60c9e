"""``iepile predict`` (test instruction file → answers) and ``iepile extract`` (raw text + schema → results)."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from iepile.cli.console import print_error


def register(app: typer.Typer) -> None:
    from iepile.config import typer_command
    from iepile.inference.extract import ExtractOptions
    from iepile.inference.predict import PredictOptions

    app.command("predict")(typer_command(PredictOptions, run_predict, doc=run_predict.__doc__, extra={
        "src": (str, typer.Argument(..., metavar="SRC", help="Test instructions from `iepile convert --split test`.")),
        "dst": (str, typer.Argument(..., metavar="DST", help="Output: the same lines plus \"output\" (readable by "
                                    "`iepile eval`)."))}))
    app.command("extract")(typer_command(ExtractOptions, run_extract, doc=run_extract.__doc__, extra={
        "task": (str, typer.Option("NER", "--task", "-t", help="NER, RE, SPO, EE, EET or KG.")),
        "schema": (str, typer.Option(..., "--schema", "-s", help="JSON labels: '[\"person\", \"organization\"]', "
                                     "or for EE/KG '{\"type\": [\"role\", ...]}'.")),
        "text": (Optional[list[str]], typer.Option(None, "--text", help="A text to extract from (repeatable).")),
        "file": (Optional[str], typer.Option(None, "--file", "-f", help="One text per line, or JSON lines with a "
                                             "\"text\" field; - for standard input.")),
        "language": (Optional[str], typer.Option(None, "--language", "-l", help="en or zh (default: detected).")),
        "output": (Optional[str], typer.Option(None, "--output", "-o", help="Write the results here (default: "
                                               "stdout).")),
        "fmt": (str, typer.Option("jsonl", "--format", help="jsonl (iepile's results), or pre-annotations for "
                                  "an annotation tool: doccano (JSON lines), label-studio (a task list with "
                                  "predictions), brat (a folder of .txt/.ann pairs; NER and RE) or spacy (a DocBin; NER)."))}))


def run_predict(options, *, src: str, dst: str) -> None:
    """Answer test instructions in batches; rerun the same command to resume after an interruption."""
    from rich.console import Console

    from iepile.inference.predict import predict_file

    console = Console(stderr=True)
    warn_if_untrained(options.model, options.adapter, console)
    try:
        summary = predict_file(src, dst, options)
    except (ValueError, OSError) as err:
        print_error(console, err)
        raise typer.Exit(1) from None
    if summary.generated == 0 and summary.already_done == summary.lines:
        console.print(f"{dst}: all {summary.lines} instructions already answered")
        return
    console.print(f"{dst}: {summary.generated} answered, {summary.already_done} resumed, "
                  f"{summary.instructions_per_second:.2f} instructions/s")


def run_extract(options, *, task: str, schema: str, text: Optional[list[str]], file: Optional[str],
                language: Optional[str], output: Optional[str], fmt: str) -> None:
    """Extract from raw text with a schema: one JSON line per text with the merged answer and character offsets."""
    from rich.console import Console

    from iepile.inference.extract import Extractor

    console = Console(stderr=True)
    warn_if_untrained(options.model, options.adapter, console)
    try:
        from iepile.inference.exports import EXPORT_FORMATS, EXPORT_TASKS, export, model_version

        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
        if fmt != "jsonl" and task.upper() not in EXPORT_TASKS:
            raise ValueError(f"--format {fmt} exports {', '.join(EXPORT_TASKS)} results, not {task}")
        if output:
            from iepile.fileio import check_writable

            check_writable(output, "--output")  # before the model runs
        labels = json.loads(schema)
        texts = list(text or []) + (_read_texts(file) if file else [])
        if not texts:
            raise ValueError("give --text or --file")
        if fmt in ("brat", "spacy") and not output:
            raise ValueError(f"--format {fmt} writes files: give -o {'FOLDER' if fmt == 'brat' else 'FILE.spacy'}")
        if fmt == "spacy" and task.upper() != "NER":
            raise ValueError("--format spacy exports NER results (a DocBin of entities)")
        results = Extractor(options=options).extract_batch(texts, labels, task=task, language=language)
        if fmt in ("brat", "spacy"):
            from iepile.data.formats import brat, spacy_docs
            from iepile.inference.exports import results_to_records

            records = results_to_records(results, task)
            if fmt == "brat":
                console.print(f"{brat.write(records, task.upper(), output)} documents (.txt + .ann) → {output}")
            else:
                languages = {r.language for r in results}
                language = languages.pop() if len(languages) == 1 else "xx"
                console.print(f"{spacy_docs.write(records, output, language)} docs → {output}")
            return
        content = export(results, task, fmt, model_version(options.model, options.adapter))
    except (ValueError, OSError) as err:
        print_error(console, err)
        raise typer.Exit(1) from None
    if output:
        from iepile.fileio import write_text_atomic

        write_text_atomic(output, content)
    else:
        sys.stdout.write(content)


def _read_texts(path: str) -> list[str]:
    """Plain lines are texts; a line that is a JSON object gives its ``text`` field."""
    handle = sys.stdin if path == "-" else open(path, encoding="utf-8")
    texts = []
    try:
        for line in handle:
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if line.lstrip().startswith("{"):
                try:
                    texts.append(json.loads(line)["text"])
                    continue
                except (json.JSONDecodeError, KeyError, TypeError):
                    pass
            texts.append(line)
    finally:
        if path != "-":
            handle.close()
    return texts


def warn_if_untrained(model: Optional[str], adapter: Optional[str], console) -> None:
    """The default model without fine-tuning extracts poorly (bench/RESULTS.md): say so and where a trained one is."""
    if model is None and adapter is None:
        console.print("[yellow]note:[/] no --model or --adapter: this is the base SmolLM2-135M-Instruct, not trained "
                      "for extraction (expect low F1). `make demo` leaves a fine-tuned model in runs/demo/run/model, "
                      "`make reproduce` one in runs/reproduce/train/run/model.")
