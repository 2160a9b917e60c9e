"""The annotation loop, top to bottom: import what annotators exported from Label Studio, convert, fine-tune,
pre-annotate new texts as Label Studio predictions, take the corrected tasks back, retrain.

    python examples/annotation_loop.py [--data ../shared/data] [--model DIR] [--steps 40] [--out runs/loop]

Annotators are simulated with CoNLL-2003 gold: the "export" is 64 annotated train sentences written in Label Studio's
export shape, and the "corrections" of the model's pre-annotations on 16 new sentences are their gold entities (a
Label Studio export keeps both: the task's ``predictions`` and the corrected ``annotations``; the importer takes the
annotations). Every step prints and returns its counts; ``tests/test_annotation_loop.py`` runs it on a tiny model.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
SCHEMA = ["person", "location", "organisation", "misc"]  # CoNLL-2003 as the reader names it


def gold_records(data: Path, start: int, count: int) -> list[dict]:
    from itertools import islice

    from iepile.data.formats import read_records
    from iepile.data.formats.base import ReadOptions, ReadStats

    records = read_records(data / "en/ner/conll2003/train.txt", "conll", ReadOptions(task="NER", language="en"),
                           ReadStats())
    return [r for r in islice(records, start, start + count) if r["entity"]]


def write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return path


def train_on(records_file: Path, out: Path, model: str, steps: int, init_adapter=None, **settings):
    """Convert the records and fine-tune (LoRA) on them; returns (instructions, TrainResult)."""
    from iepile.convert import ConvertOptions, convert_file
    from iepile.training.recipe import TrainConfig, train

    instructions = out / "train.json"
    convert_file(str(records_file), str(instructions), ConvertOptions(task="NER", language="en", split="train",
                                                                       source="conll2003", progress=False))
    config = TrainConfig(train_file=str(instructions), output_dir=str(out / "run"), model=model, max_steps=steps,
                         init_adapter=init_adapter, progress=False, overwrite=True, **settings)
    return sum(1 for _ in open(instructions, encoding="utf-8")), train(config)


def run(data: Path, out: Path, model: str, steps: int, **settings) -> dict:
    from iepile.data.formats import import_file, label_studio
    from iepile.data.formats.base import ReadOptions
    from iepile.inference.exports import export
    from iepile.inference.extract import Extractor

    out.mkdir(parents=True, exist_ok=True)
    counts: dict = {}

    # 1. what the annotators exported from Label Studio (simulated from gold), imported back into records
    export_file = write_json(out / "label_studio_export.json", label_studio.write(gold_records(data, 0, 64), "NER"))
    first = import_file(export_file, out / "round1.json", "label-studio", ReadOptions(task="NER"))
    counts["1_imported"] = {"records": first["records"], "entities": first["entities"]}

    # 2. convert and fine-tune
    (out / "round1").mkdir(exist_ok=True)
    instructions, trained = train_on(out / "round1.json", out / "round1", model, steps, **settings)
    counts["2_trained"] = {"instructions": instructions, "steps": trained.global_step, "adapter": trained.saved_dir}

    # 3. pre-annotate new texts: Label Studio predictions from the fine-tuned adapter
    new = gold_records(data, 64, 16)
    extractor = Extractor(adapter=trained.saved_dir, dtype=settings.get("dtype", "auto"), max_new_tokens=48)
    results = extractor.extract_batch([r["text"] for r in new], SCHEMA, task="NER")
    tasks = json.loads(export(results, "NER", "label-studio", Path(trained.saved_dir).name))
    counts["3_pre_annotated"] = {"tasks": len(tasks),
                                 "regions": sum(len(t["predictions"][0]["result"]) for t in tasks)}

    # 4. the annotators correct them (simulated: the gold entities), Label Studio exports tasks with both
    corrected = label_studio.write(new, "NER")
    for task, fixed in zip(tasks, corrected):
        task["annotations"] = fixed["annotations"]
    second = import_file(write_json(out / "corrected_export.json", tasks), out / "round2-new.json", "label-studio",
                         ReadOptions(task="NER"))
    counts["4_corrected"] = {"records": second["records"], "entities": second["entities"]}

    # 5. retrain on everything, continuing the adapter
    merged = out / "round2.json"
    merged.write_text((out / "round1.json").read_text(encoding="utf-8")
                      + (out / "round2-new.json").read_text(encoding="utf-8"), encoding="utf-8")
    (out / "round2").mkdir(exist_ok=True)
    instructions, retrained = train_on(merged, out / "round2", model, steps, init_adapter=trained.saved_dir,
                                       **settings)
    counts["5_retrained"] = {"instructions": instructions, "steps": retrained.global_step,
                             "adapter": retrained.saved_dir}
    for step, values in counts.items():
        print(step, json.dumps(values), flush=True)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--model", default=None, help="base model (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("runs/loop"))
    args = parser.parse_args()
    run(args.data, args.out, args.model, args.steps)


if __name__ == "__main__":
    main()
