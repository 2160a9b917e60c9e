"""Training variants side by side: tokens/s, peak memory and the dev loss reached after a fixed number of minutes.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/train.py --data ../shared/data --minutes 4
    HF_HUB_OFFLINE=1 .venv/bin/python bench/train.py --variants lora,full --variant 'mine:finetuning=full,lora_r=4'

The training file is a balanced mix of the six supervised datasets of ``make reproduce`` (built with ``iepile build``
from ``recipes/corpus-small.yaml``: CoNLL-2003, CoNLL-2004, Weibo, SanWen, DuEE, PHEE, answer tokens capped per
dataset), so batches carry the real spread of lengths (short NER prompts, long event answers); the dev file is a
fixed seeded slice of the same mix that no variant trains on. Each variant is a set of :class:`iepile.training.recipe.
TrainConfig` overrides on a common base and runs in its own process (so peak RSS is its own), with the same seed and
data, for ``--minutes`` of training (a wall-clock cap, model loading and compilation included: what a user waits
for) or for exactly ``--steps`` steps (a minutes-capped run reaches a step that depends on its speed, and batch
lengths vary along the epoch: with ``--steps``, variants of the same batch settings time the same batches), then one
evaluation on the dev file. Throughput counts real (non-padding) tokens per second over the steps
after the first ``--warmup`` ones. Ratios are against the first variant, measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BASE = dict(batch_size=8, learning_rate=2e-4, lora_r=8, lr_scheduler="constant_with_warmup", warmup_ratio=0.0,
            max_source_length=512, max_target_length=320, cutoff_len=768, max_steps=100_000, save_steps=100_000,
            logging_steps=10, seed=0, progress=False)

VARIANTS = {
    "lora": {},                                               # today's default method: LoRA r=8, attention+MLP
    "lora-r32-all": {"lora_r": 32, "lora_targets": ["all"]},
    "lora-lr1e-3": {"learning_rate": 1e-3},
    "full": {"finetuning": "full", "learning_rate": 1e-4},
    "full-lr3e-5": {"finetuning": "full", "learning_rate": 3e-5},
    "lora-tokens1024": {"batch_tokens": 1024, "batch_size": 32},
    "full-tokens2048": {"finetuning": "full", "learning_rate": 1e-4, "batch_tokens": 2048, "batch_size": 32},
    "lora-checkpointing": {"gradient_checkpointing": True},
    "lora-compile": {"compile": True},
    "lora-1-thread": {"_threads": 1},
}
DEFAULT_VARIANTS = "lora,full,lora-tokens1024,full-tokens2048,lora-checkpointing,lora-r32-all,lora-compile"


# ---- one variant, in a child process -------------------------------------------------------------------------------


def run_variant(args: argparse.Namespace) -> None:
    """Train one variant for ``--minutes`` and print one JSON line of measurements."""
    import torch
    from transformers import TrainerCallback

    from iepile.training.recipe import TrainConfig, train

    overrides = json.loads(args.overrides)
    if "_threads" in overrides:
        torch.set_num_threads(overrides.pop("_threads"))
    started = time.perf_counter()

    class Clock(TrainerCallback):
        """Tokens and time per step; stops training when the minutes are up."""

        def __init__(self):
            self.marks: dict[int, tuple[float, int]] = {}

        def on_step_end(self, a, state, control, **kwargs):
            self.marks[state.global_step] = (time.perf_counter(), state.num_input_tokens_seen)
            if not args.steps and time.perf_counter() - started > args.minutes * 60:
                control.should_training_stop = True

    clock = Clock()
    output = pathlib.Path(tempfile.mkdtemp(prefix=f"bench-train-{args.name}-"))
    step_cap = {"max_steps": args.steps} if args.steps else {}
    config = TrainConfig(train_file=args.train_file, valid_file=args.dev_file, output_dir=str(output),
                         **{**BASE, **step_cap, **overrides})
    result = train(config, callbacks=[clock])
    steps = sorted(clock.marks)
    first = steps[min(args.warmup, len(steps)) - 1]  # the clock starts after the warm-up steps
    (t0, n0), (t1, n1) = clock.marks[first], clock.marks[steps[-1]]
    print(json.dumps({
        "variant": args.name, "overrides": overrides, "steps": steps[-1], "tokens_seen": n1,
        "tokens_per_second": (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0,
        "seconds_to_first_step": clock.marks[steps[0]][0] - started,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "dev_loss": result.eval_loss, "dev_loss_at_start": result.initial_eval_loss,
    }))


# ---- the comparison ------------------------------------------------------------------------------------------------


def build_mix(data: pathlib.Path, folder: pathlib.Path, answer_tokens: int, dev_lines: int) -> tuple[str, str, str]:
    """The balanced six-dataset training mix and a disjoint dev slice of it (seeded)."""
    import random

    import yaml

    from iepile.data.corpus import build

    recipe = pathlib.Path(__file__).resolve().parents[1] / "recipes" / "corpus-small.yaml"
    manifest = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    root = "../../shared/data"
    keep = {"CoNLL2003", "conll04", "weibo", "SanWen", "DuEE1.0", "PHEE"}
    datasets = []
    for item in manifest["datasets"]:
        if item["name"] in keep:
            text = json.dumps(item).replace(root, str(data))
            item = json.loads(text)
            item["splits"] = {"train": item["splits"]["train"]}
            datasets.append(item)
    manifest.update(datasets=datasets, output=str(folder / "corpus"), tokenizer="default",
                    balance={"answer_tokens": answer_tokens, "max_empty_share": 0.3}, clean=False)
    path = folder / "bench-mix.yaml"
    path.write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    build(path)
    lines = (folder / "corpus" / "train.json").read_text(encoding="utf-8").splitlines(keepends=True)
    dev = set(random.Random("bench-dev").sample(range(len(lines)), dev_lines))
    train_file, dev_file = folder / "train.jsonl", folder / "dev.jsonl"
    train_file.write_text("".join(line for i, line in enumerate(lines) if i not in dev), encoding="utf-8")
    dev_file.write_text("".join(lines[i] for i in sorted(dev)), encoding="utf-8")
    return str(train_file), str(dev_file), f"{len(lines) - dev_lines} training lines, {dev_lines} dev lines"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--minutes", type=float, default=4.0, help="training minutes per variant")
    parser.add_argument("--steps", type=int, help="train exactly this many steps instead of --minutes: variants "
                        "with the same batch settings then time the same batches (compile, threads, checkpointing)")
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of tokens/s")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated, from: {', '.join(VARIANTS)}")
    parser.add_argument("--variant", action="append", default=[], help="NAME:key=value,key=value (TrainConfig)")
    parser.add_argument("--answer-tokens", type=int, default=20_000, help="per-dataset cap of the training mix")
    parser.add_argument("--dev-lines", type=int, default=96)
    parser.add_argument("--json", help="write the measurements here")
    parser.add_argument("--name", help=argparse.SUPPRESS)  # internal: run one variant in this process
    parser.add_argument("--overrides", help=argparse.SUPPRESS)
    parser.add_argument("--train-file", help=argparse.SUPPRESS)
    parser.add_argument("--dev-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.name:
        return run_variant(args)

    variants = {name: VARIANTS[name] for name in args.variants.split(",") if name}
    for spec in args.variant:
        name, _, settings = spec.partition(":")
        variants[name] = {k: _value(v) for k, v in (pair.split("=", 1) for pair in settings.split(",") if pair)}
    folder = pathlib.Path(tempfile.mkdtemp(prefix="bench-train-"))
    train_file, dev_file, sizes = build_mix(pathlib.Path(args.data).resolve(), folder, args.answer_tokens,
                                            args.dev_lines)
    budget = f"{args.steps} steps" if args.steps else f"{args.minutes:g} min"
    print(f"{sizes}; {budget} per variant; base {BASE}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, {datetime.date.today()}", flush=True)
    results = []
    for name, overrides in variants.items():
        command = [sys.executable, __file__, "--name", name, "--overrides", json.dumps(overrides), "--train-file",
                   train_file, "--dev-file", dev_file, "--minutes", str(args.minutes), "--warmup", str(args.warmup),
                   *(["--steps", str(args.steps)] if args.steps else [])]
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            print(f"{name} failed:\n{completed.stderr[-2000:]}", flush=True)
            continue
        results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
        print(row(results[-1], results[0]), flush=True)
    print_table(results)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"base": BASE, "minutes": args.minutes, "steps": args.steps,
                                                       "sizes": sizes,
                                                       "results": results}, indent=2) + "\n", encoding="utf-8")


def _value(text: str):
    """A --variant value: JSON where it parses (numbers, true, lists), else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def row(r: dict, baseline: dict) -> str:
    ratio = r["tokens_per_second"] / baseline["tokens_per_second"] if baseline["tokens_per_second"] else 0.0
    dev = f"{r['dev_loss']:.3f}" if r["dev_loss"] is not None else "-"
    return (f"| {r['variant']} | {r['tokens_per_second']:.0f} | {ratio:.2f}x | {r['peak_rss_mib']:.0f} | {r['steps']} "
            f"| {r['tokens_seen']} | {r['seconds_to_first_step']:.0f} | {dev} |")


def print_table(results: list[dict]) -> None:
    if not results:
        return
    print(f"\n| variant | tokens/s | vs {results[0]['variant']} | peak RSS MiB | steps | tokens | s to first step "
          f"| dev loss (start {results[0]['dev_loss_at_start']:.3f}) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(row(r, results[0]))


if __name__ == "__main__":
    main()
