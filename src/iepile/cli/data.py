"""Data commands: ``import`` (dataset files → records), ``clean``, ``build`` (manifest → corpus), ``stats`` and
``mine-negatives``. Each parses options and calls one library function; heavy imports happen inside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from iepile.cli.console import print_error


def register(app: typer.Typer) -> None:
    from iepile.config import typer_command
    from iepile.data.clean import CleanOptions
    from iepile.data.formats.base import ReadOptions
    from iepile.data.negatives import MineOptions

    app.command("import")(typer_command(ReadOptions, run_import, doc=run_import.__doc__, extra=IMPORT_ARGUMENTS))
    app.command("clean")(typer_command(CleanOptions, run_clean, doc=run_clean.__doc__, extra=CLEAN_ARGUMENTS))
    app.command("build")(build_command)
    app.command("stats")(stats_command)
    app.command("mine-negatives")(typer_command(MineOptions, run_mine, doc=run_mine.__doc__, extra=MINE_ARGUMENTS))


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _fail(err: Exception) -> None:
    print_error(_console(), err)
    raise typer.Exit(1)


def _label_map(value: Optional[str]) -> dict:
    """A label map given inline as JSON or as a JSON/YAML file; a syntax error or a value that is not a label is an
    error naming the option (and the file)."""
    from iepile.data.formats import check_label_map

    if not value:
        return {}
    if value.lstrip().startswith("{"):
        try:
            return check_label_map(json.loads(value))
        except json.JSONDecodeError as err:
            raise ValueError(f"--label-map: malformed JSON ({err.msg} at column {err.colno})") from None
    from iepile.fileio import load_yaml

    loaded = load_yaml(Path(value).read_text(encoding="utf-8"), f"--label-map {value}")
    return check_label_map(loaded or {}, f"--label-map {value}")


def run_import(opts, *, src: str, out: str, fmt: str, schema_out: Optional[str], label_map: Optional[str]) -> None:
    """Read a dataset in a common IE format and write unified records plus the 3-line schema file."""
    from iepile.data.formats import FormatError, import_file
    from iepile.records import RecordError

    try:
        stats = import_file(src, out, fmt, opts, schema_out=schema_out, label_map=_label_map(label_map))
    except (RecordError, FormatError, OSError, ValueError) as err:
        _fail(err)
    console = _console()
    console.print(f"{stats['records']} records, {stats['entities']} entities, {stats['relations']} relations, "
                  f"{stats['events']} events, {stats['arguments']} arguments → {stats['output']}; "
                  f"schema → {stats['schema']} (sizes {stats['schema_sizes']})")
    for title, counts in (("skipped", stats["skipped"]), ("repaired/noted", stats["notes"])):
        for reason, n in counts.items():
            console.print(f"  {title}: {n} × {reason}")
    for example in stats["examples"][:10]:
        console.print(f"  e.g. {example}")
    if stats["undeclared_labels"]:
        console.print(f"  labels not in the declared schema (added): {stats['undeclared_labels']}")


IMPORT_ARGUMENTS = {
    "src": (str, typer.Argument(..., metavar="SRC", help="Dataset file in the source format.")),
    "out": (str, typer.Argument(..., metavar="OUT", help="Output JSON-lines records (unified format).")),
    "fmt": (str, typer.Option(..., "--format", "-f", help="conll, spert, triples, opennre, pair-tsv, spo-list, duee, "
                              "fewfc, phee, casie, rams, wikievents, fewrel; annotation tools: brat, doccano, "
                              "label-studio, prodigy, spacy.")),
    "schema_out": (Optional[str], typer.Option(None, "--schema-out", help="Schema file (default: OUT with "
                                               ".schema.json).")),
    "label_map": (Optional[str], typer.Option(None, "--label-map", help="Rename labels: JSON object or JSON/YAML "
                                              "file, e.g. '{\"PER.NAM\": \"person\"}'.")),
}


def run_clean(opts, *, src: str, out: str, report: Optional[str]) -> None:
    """Drop noisy records (the IEPile paper's three rules), exact duplicates and conflicts, optionally near dups."""
    from iepile.data.clean import clean_file
    from iepile.records import RecordError

    try:
        summary = clean_file(src, out, opts, report)
    except (RecordError, OSError, ValueError) as err:
        _fail(err)
    rejected = f"{summary['rejected']} bad line(s) rejected (--on-error skip); " if summary["rejected"] else ""
    _console().print(f"{summary['kept']} of {summary['records_in']} records kept → {out}; {rejected}removed "
                     f"{summary['removed'] or 'nothing'}; {summary['conflict_groups']} conflict groups; "
                     f"report → {summary['report']}")


CLEAN_ARGUMENTS = {
    "src": (str, typer.Argument(..., metavar="SRC", help="JSON-lines records.")),
    "out": (str, typer.Argument(..., metavar="OUT", help="Cleaned records.")),
    "report": (Optional[str], typer.Option(None, "--report", help="Removed records with their rule (default: "
                                           "OUT.removed.jsonl).")),
}


def build_command(
    manifest: str = typer.Argument(..., help="Corpus manifest (YAML)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Output folder (default: the manifest's)."),
    keep_work: bool = typer.Option(False, "--keep-work", help="Keep intermediate records in OUTPUT/_work."),
) -> None:
    """Import, clean and convert every dataset of a manifest into one shuffled training file, test files per
    dataset and split, a combined manifest and dataset cards. Same manifest and seed → byte-identical output."""
    from iepile.data.corpus import build
    from iepile.data.manifest import ManifestError

    try:
        combined = build(manifest, output, keep_work)
    except (ManifestError, OSError, ValueError) as err:
        _fail(err)
    names = ", ".join(d["name"] for d in combined["datasets"])
    _console().print(f"{combined['train']['lines']} training instructions from {names}")


def stats_command(
    path: str = typer.Argument(..., help="Records, train instructions or test instructions (JSON lines)."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="Local Hugging Face tokenizer folder for "
                                            "token lengths (default: words + CJK characters)."),
) -> None:
    """Print record/label/instruction counts and token-length percentiles of a file as JSON."""
    from iepile.data.stats import TokenCounter, file_stats

    try:
        stats = file_stats(path, TokenCounter(tokenizer))
    except (OSError, ValueError) as err:
        _fail(err)
    typer.echo(json.dumps(stats, ensure_ascii=False, indent=2))


def run_mine(opts, *, out: str) -> None:
    """Mine a hard-negative dictionary from label-name similarity and/or a model's confusions."""
    from iepile.data import negatives as nm
    from iepile.fileio import check_writable, read_json, refuse_input_as_output, write_text_atomic

    try:
        opts.validate()
        refuse_input_as_output(out, *opts.inputs())
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        check_writable(out, "OUT")  # before the embedding model loads
        reference = read_json(opts.reference) if opts.reference else None
        mined, said = nm.mine(opts)
        write_text_atomic(out, json.dumps(mined, ensure_ascii=False, indent=2) + "\n")
    except (OSError, ValueError, RuntimeError) as err:
        _fail(err)
    if said:
        _console().print(said)
    _console().print(f"hard negatives → {out}")
    if reference is not None:
        typer.echo(json.dumps(nm.recall(reference, mined, nested=bool(opts.like or opts.dataset)), indent=2))


MINE_ARGUMENTS = {"out": (str, typer.Argument(..., metavar="OUT", help="Hard-negative dictionary to write (JSON)."))}
