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
        from iepile.fileio import refuse_input_as_output
        from iepile.inference.exports import check_export, export, model_version

        refuse_input_as_output(output, file)
        check_export(fmt, task, output)  # before the model runs
        labels = _schema_labels(schema)
        texts = list(text or []) + (_read_texts(file) if file else [])
        if not texts:
            raise ValueError("give --text or --file")
        results = Extractor(options=options).extract_batch(texts, labels, task=task, language=language)
        written = export(results, task, fmt, model_version(options.model, options.adapter), output)
    except (ValueError, OSError) as err:
        print_error(console, err)
        raise typer.Exit(1) from None
    if output:
        console.print(written)
    else:
        sys.stdout.write(written)


def _schema_labels(schema: str):
    try:
        return json.loads(schema)
    except json.JSONDecodeError as err:
        raise ValueError(f"--schema: malformed JSON ({err.msg} at column {err.colno}), e.g. '[\"person\"]'") from None


def _read_texts(path: str) -> list[str]:
    """Plain lines are texts; a line that opens with ``{`` is a JSON object whose ``text`` field is the text. A bad
    line (not UTF-8, malformed JSON, no string ``text``) is an error naming the file and line, never a text."""
    handle = sys.stdin.buffer if path == "-" else open(path, "rb")
    try:
        return [text for number, raw in enumerate(handle, start=1)
                if (text := _text_of_line(raw, path, number)) is not None]
    finally:
        if path != "-":
            handle.close()


def _text_of_line(raw: bytes, path: str, number: int) -> Optional[str]:
    try:
        line = raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}:{number}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    if not line.strip():
        return None
    if not line.lstrip().startswith("{"):
        return line
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{number}: malformed JSON ({err.msg} at column {err.colno}); a line opening "
                         "with { is read as a JSON object with a \"text\" field") from None
    text = obj.get("text") if isinstance(obj, dict) else None
    if not isinstance(text, str):
        found = "no text field" if not isinstance(obj, dict) or "text" not in obj else type(text).__name__
        raise ValueError(f"{path}:{number}: text: expected a string, got {found}")
    return text


def warn_if_untrained(model: Optional[str], adapter: Optional[str], console) -> None:
    """The default model without fine-tuning extracts poorly (bench/RESULTS.md): say so and where a trained one is."""
    if model is None and adapter is None:
        console.print("[yellow]note:[/] no --model or --adapter: this is the base SmolLM2-135M-Instruct, not trained "
                      "for extraction (expect low F1). `make demo` leaves a fine-tuned model in runs/demo/run/model, "
                      "`make reproduce` one in runs/reproduce/train/run/model.")
