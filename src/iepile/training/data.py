"""Training data: rows read and checked, encoded with the one prompt builder, batched (collator and samplers)."""

from __future__ import annotations

import os
import random
from typing import Any

from iepile.fileio import read_jsonl
from iepile.instructions import instruction_sentence
from iepile.training.config import TrainConfig
from iepile.training.prefix import split_shared_prefix

# ---- 2. data -------------------------------------------------------------------------------------------------------


def read_rows(path: str | os.PathLike) -> list[dict]:
    """Read JSON-lines training rows; bad input names the file, line and field."""
    rows = []
    for line_number, row in read_jsonl(path):
        for field in ("instruction", "output"):
            if not isinstance(row.get(field), str):
                problem = "missing" if field not in row else f"must be a string, not {type(row[field]).__name__}"
                raise ValueError(f"{path}:{line_number}: field {field!r} {problem}")
        rows.append({"instruction": row["instruction"], "output": row["output"], "line": line_number})
    return rows


def read_data(config: TrainConfig) -> tuple[list[dict], list[dict]]:
    """Train rows and validation rows (a file, or a seeded held-out slice of the train file)."""
    import random

    rows = read_rows(config.train_file)
    if config.valid_file:
        return rows, read_rows(config.valid_file)
    if not config.val_size:
        return rows, []
    if config.val_size >= len(rows):
        raise ValueError(f"--val-size {config.val_size} leaves no training rows ({len(rows)} rows)")
    order = list(range(len(rows)))
    random.Random(config.seed).shuffle(order)
    held_out = set(order[: config.val_size])
    return [r for i, r in enumerate(rows) if i not in held_out], [r for i, r in enumerate(rows) if i in held_out]


def encode_rows(rows: list[dict], builder: Any, config: TrainConfig) -> tuple[list[dict], dict]:
    """Encode rows under the length limits; returns the examples and counts of what happened to the rows."""
    from collections import Counter

    counts: Counter = Counter()
    examples = []
    for index, row in enumerate(rows):
        encoded = builder.encode_example(
            row["instruction"],
            row["output"],
            max_source_length=config.max_source_length,
            max_target_length=config.max_target_length,
            cutoff_len=config.cutoff_len,
        )
        counts[encoded.status] += 1
        if encoded.input_ids:
            examples.append({"input_ids": encoded.input_ids, "labels": encoded.labels, "index": index,
                             "group": instruction_sentence(row["instruction"])})
    report = {"rows": len(rows), "examples": len(examples), **dict(sorted(counts.items()))}
    report["tokens"] = sum(len(e["input_ids"]) for e in examples)
    report["answer_tokens"] = sum(sum(1 for label in e["labels"] if label != -100) for e in examples)
    return examples, report


class SupervisedCollator:
    """Batches encoded examples: right-padded (padded/grouped), or flattened into one row (packed).

    Packed batches carry ``position_ids`` that restart at 0 for every example and no attention mask; transformers
    then builds a block-diagonal causal mask, so examples never attend to each other (pinned by a test).

    Every batch also says where answer tokens are predicted (``logits_to_keep``, a boolean mask) and what they are
    (``shift_labels``): the model then projects only those positions onto the vocabulary. Prompts are most of the
    tokens and the vocabulary projection is the most expensive layer of a small model, so this is a large saving.

    With ``share_prefix`` a padded batch whose rows start with the same tokens carries them once as ``prefix_ids``
    (one row), ``input_ids`` and ``labels`` hold the rest of each row and ``attention_mask`` covers both
    (:mod:`iepile.training.prefix`).
    """

    def __init__(self, pad_token_id: int, batching: str, seen_indices: list[int] | None = None, *,
                 share_prefix: bool = False):
        self.pad_token_id = pad_token_id
        self.batching = batching
        self.seen_indices = seen_indices
        self.share_prefix = share_prefix and batching != "packed"

    def __call__(self, features: list[dict]) -> dict:
        import torch

        if self.seen_indices is not None:
            self.seen_indices.extend(f["index"] for f in features if "index" in f)
        split = split_shared_prefix(features) if self.share_prefix else None
        if self.batching == "packed":
            batch = self._packed(features)
        elif split is None:
            batch = self._padded(features)
        else:
            prefix, rests = split
            batch = self._padded(rests)
            rows = len(rests)
            batch["attention_mask"] = torch.cat([torch.ones(rows, len(prefix), dtype=torch.long),
                                                 batch["attention_mask"]], dim=1)
            batch["prefix_ids"] = torch.tensor([prefix])
        return {**batch, **answer_positions(batch["labels"])}

    def _padded(self, features: list[dict]) -> dict:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        input_ids = [f["input_ids"] + [self.pad_token_id] * (width - len(f["input_ids"])) for f in features]
        labels = [f["labels"] + [-100] * (width - len(f["labels"])) for f in features]
        mask = [[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in features]
        return {
            "input_ids": torch.tensor(input_ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(mask),
        }

    def _packed(self, features: list[dict]) -> dict:
        import torch

        input_ids, labels, positions = [], [], []
        for feature in features:
            input_ids += feature["input_ids"]
            labels += [-100] + feature["labels"][1:]  # never predict an example's first token from the previous one
            positions += list(range(len(feature["input_ids"])))
        return {
            "input_ids": torch.tensor([input_ids]),
            "labels": torch.tensor([labels]),
            "position_ids": torch.tensor([positions]),
        }


def answer_positions(labels) -> dict:
    """Positions whose next token is supervised (bool mask) and those next tokens (the causal shift, done once)."""
    import torch

    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != -100
    return {"logits_to_keep": keep, "shift_labels": labels[:, 1:][keep[:, :-1]]}


def _sampler_base():
    from torch.utils.data import Sampler

    return Sampler


class EpochSeededLengthGroupedSampler(_sampler_base()):
    """Length-grouped random order (batches of similar lengths, little padding) seeded by (seed, epoch).

    The stock ``LengthGroupedSampler`` draws from the global RNG, so after ``--resume`` the interrupted epoch would
    be reshuffled differently; seeding by epoch gives the same order on every rank and after a resume.

    With ``groups`` (one key per example: its prompt's task sentence) every window of 50 batches is also sorted by
    group before it is cut into batches, and its batches are shuffled: nearly every batch holds one group and
    shares its prompt prefix (:mod:`iepile.training.prefix`), in no particular order of groups.
    """

    def __init__(self, lengths: list[int], group_size: int, seed: int, groups: list[str] | None = None):
        self.lengths, self.group_size, self.seed, self.epoch = lengths, group_size, seed, 0
        self.groups = groups

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        import torch
        from transformers.trainer_pt_utils import get_length_grouped_indices

        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = get_length_grouped_indices(self.lengths, self.group_size, generator=generator)
        if self.groups is None:
            return iter(order)
        return iter(self._grouped_by_prompt(order, generator))

    def _grouped_by_prompt(self, order: list[int], generator) -> list[int]:
        """Each window of 50 batches sorted by (group, length), cut into batches, the batches shuffled (seeded)."""
        import torch

        window, grouped = 50 * self.group_size, []
        for start in range(0, len(order), window):
            ranked = sorted(order[start:start + window], key=lambda i: (self.groups[i], -self.lengths[i]))
            batches = [ranked[b:b + self.group_size] for b in range(0, len(ranked), self.group_size)]
            full = len(ranked) // self.group_size  # a short last batch stays last, so batches stay aligned
            shuffled = torch.randperm(full, generator=generator).tolist() + list(range(full, len(batches)))
            grouped += [i for b in shuffled for i in batches[b]]
        return grouped


class TokenBudgetBatchSampler(_sampler_base()):
    """Batches of examples of similar length holding at most ``max_tokens`` padded tokens (and ``max_examples``
    examples), as fairseq's ``--max-tokens``: activation memory follows the tokens of a batch (about 1.6 MB per
    token for SmolLM2-135M), so a fixed number of examples makes the long event answers' batches 10-15 GB while a
    token cap bounds every batch. The loss is already a mean over answer tokens, so batches of different sizes
    weigh by their tokens.

    The batches are composed once (examples sorted by length, ties in a seeded order, cut greedily) and only their
    order is shuffled per epoch (seeded by seed and epoch): the number of batches is the same in every epoch and
    after a resume, which the Trainer's step counting needs. With ``groups`` (one key per example: its prompt's
    task sentence) a batch holds one group only, so that its rows share their prompt prefix
    (:mod:`iepile.training.prefix`).
    """

    def __init__(self, lengths: list[int], max_tokens: int, max_examples: int, seed: int,
                 groups: list[str] | None = None):
        self.seed, self.epoch = seed, 0
        tie_break = random.Random(f"{seed}:token-budget")
        group_of = groups or [""] * len(lengths)
        order = sorted(range(len(lengths)), key=lambda i: (group_of[i], lengths[i], tie_break.random()))
        self.batches: list[list[int]] = []
        batch: list[int] = []
        for i in order:  # ascending length: the newcomer is the longest, so padded size = (n + 1) * lengths[i]
            if batch and ((len(batch) + 1) * lengths[i] > max_tokens or len(batch) == max_examples
                          or group_of[batch[0]] != group_of[i]):
                self.batches.append(batch)
                batch = []
            batch.append(i)
        if batch:
            self.batches.append(batch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        order = list(range(len(self.batches)))
        random.Random(f"{self.seed}:{self.epoch}").shuffle(order)
        return (list(self.batches[i]) for i in order)
