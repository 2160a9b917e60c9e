"""Shared prompt prefixes in training, on the same batches: one forward + backward of a batch with and without its
common prefix computed once (iepile.training.prefix), for each task group of a training file.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/prefix.py runs/reproduce/corpus/corpus/train.json --rows 16
    HF_HUB_OFFLINE=1 .venv/bin/python bench/prefix.py train.json --finetuning lora --rows 4

``bench/train.py`` compares whole runs, whose batches differ once they are grouped by task; this times the very same
batch both ways (the middle-length rows of each group, so that padding is alike), alternating, ``--repeats`` times,
and reports the median of each and their ratio, with the prefix length and the loss of both (equal to rounding).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_file")
    parser.add_argument("--finetuning", choices=["full", "lora"], default="full")
    parser.add_argument("--rows", type=int, default=16, help="examples per batch")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from iepile.training import prefix
    from iepile.training.config import TrainConfig
    from iepile.training.data import SupervisedCollator, encode_rows, read_rows
    from iepile.training.model import load_model, prompt_builder

    config = TrainConfig(train_file=args.train_file, output_dir="unused", finetuning=args.finetuning,
                         max_target_length=320, cutoff_len=768)
    model, tokenizer = load_model(config)
    model.train()
    examples, _ = encode_rows(read_rows(args.train_file), prompt_builder(tokenizer, config), config)
    groups = defaultdict(list)
    for example in examples:
        groups[example["group"]].append(example)

    def step(batch: dict) -> tuple[float, float]:
        batch = dict(batch)
        targets = batch.pop("shift_labels")
        batch.pop("labels")
        model.zero_grad()
        started = time.perf_counter()
        logits = prefix.forward(model, batch).logits
        loss = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum")
        loss.backward()
        return time.perf_counter() - started, loss.item()

    print(f"{args.finetuning}, {args.rows} rows a batch, {torch.get_num_threads()} threads, "
          f"dtype {next(model.parameters()).dtype}")
    print("| group | row tokens | prefix | plain s | shared s | ratio | loss plain / shared |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for group, members in sorted(groups.items()):
        members.sort(key=lambda e: len(e["input_ids"]))
        middle = max(0, len(members) // 2 - args.rows // 2)
        features = members[middle:middle + args.rows]
        plain = SupervisedCollator(tokenizer.pad_token_id, "padded")(features)
        shared = SupervisedCollator(tokenizer.pad_token_id, "padded", share_prefix=True)(features)
        width = shared["prefix_ids"].shape[1] if "prefix_ids" in shared else 0
        times: dict[str, list[float]] = {"plain": [], "shared": []}
        losses = {}
        for _ in range(args.repeats):
            for name, batch in (("plain", plain), ("shared", shared)):
                seconds, losses[name] = step(batch)
                times[name].append(seconds)
        plain_s, shared_s = statistics.median(times["plain"]), statistics.median(times["shared"])
        print(f"| {group[:40]} | {plain['input_ids'].shape[1]} | {width} | {plain_s:.2f} | {shared_s:.2f} | "
              f"{plain_s / shared_s:.2f}x | {losses['plain']:.3f} / {losses['shared']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
