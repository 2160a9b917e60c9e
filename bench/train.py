"""Training throughput: padded vs length-grouped vs packed batches, default model + LoRA, CoNLL-2003 instructions.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/train.py --data ../shared/data --steps 20

Each batching mode runs in its own process (so peak memory is per mode) with the same seed, data and settings.
Throughput counts real (non-padding) tokens per second over the steps after the first (warm-up excluded);
"computed tokens" include the padding the model also had to process. Ratios are against the padded baseline.
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

TYPES = ["location", "misc", "organisation", "person"]


def conll_instruction_lines(path: pathlib.Path, limit: int) -> list[dict]:
    """The first ``limit`` CoNLL-2003 sentences as IEPile NER training lines: iepile's reader, then iepile.convert."""
    import itertools

    import iepile
    from iepile.formats import read_records
    from iepile.formats.base import ReadOptions, ReadStats

    records = itertools.islice(read_records(path, "conll", ReadOptions(task="NER", language="en"), ReadStats()), limit)
    return iepile.convert(records, task="NER", language="en", schema=TYPES, split="train", source="conll2003")


# ---- one mode, in a child process --------------------------------------------------------------------------------


def run_mode(args: argparse.Namespace) -> None:
    """Train ``--steps`` steps in one batching mode and print a JSON line of measurements."""
    from transformers import TrainerCallback

    from iepile.train import TrainConfig, train

    class StepClock(TrainerCallback):
        """Time and token count at the end of step 1 and of the last step (warm-up excluded)."""

        def __init__(self):
            self.marks = {}

        def on_step_end(self, a, state, control, **kwargs):
            self.marks[state.global_step] = (time.perf_counter(), state.num_input_tokens_seen)

    clock = StepClock()
    output = pathlib.Path(tempfile.mkdtemp(prefix=f"bench-train-{args.mode}-"))
    config = TrainConfig(
        train_file=args.train_file, output_dir=str(output), batching=args.mode, batch_size=args.batch_size,
        max_steps=args.steps, dtype=args.dtype, seed=0, progress=False, logging_steps=args.steps,
        save_steps=10_000, lora_r=8,
    )
    result = train(config, callbacks=[clock])
    (t1, tokens1), (t_end, tokens_end) = clock.marks[1], clock.marks[args.steps]
    print(json.dumps({
        "mode": args.mode,
        "dtype": args.dtype,
        "tokens_per_second": (tokens_end - tokens1) / (t_end - t1),
        "seconds_per_step": (t_end - t1) / (args.steps - 1),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "train_loss": result.train_loss,
        "tokens_seen": result.tokens_seen,
    }))


# ---- the comparison ----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--modes", default="padded,grouped,packed")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 where supported), bf16 or fp32")
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # internal: run one mode in this process
    parser.add_argument("--train-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        return run_mode(args)

    rows = conll_instruction_lines(pathlib.Path(args.data) / "en" / "ner" / "conll2003" / "train.txt", args.rows)
    train_file = pathlib.Path(tempfile.mkdtemp(prefix="bench-train-")) / "conll2003.jsonl"
    train_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} CoNLL-2003 instruction lines, batch {args.batch_size}, {args.steps} steps, LoRA r=8, "
          f"default model, dtype {args.dtype}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}, {datetime.date.today()}")
    results = []
    for mode in args.modes.split(","):
        command = [sys.executable, __file__, "--mode", mode, "--train-file", str(train_file), "--steps",
                   str(args.steps), "--batch-size", str(args.batch_size), "--dtype", args.dtype]
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            sys.exit(f"{mode} failed:\n{completed.stderr[-3000:]}")
        results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    print_table(results)


def print_table(results: list[dict]) -> None:
    baseline = results[0]["tokens_per_second"]
    print(f"{'batching':<10} {'tokens/s':>9} {'s/step':>7} {'vs ' + results[0]['mode']:>10} {'peak RSS MiB':>13}")
    for r in results:
        print(f"{r['mode']:<10} {r['tokens_per_second']:>9.0f} {r['seconds_per_step']:>7.2f} "
              f"{r['tokens_per_second'] / baseline:>9.2f}x {r['peak_rss_mib']:>13.0f}")


if __name__ == "__main__":
    main()
