"""Shared prompt prefixes in training (iepile.training.prefix): the same loss and gradients as the plain batch, a
prefix that never swallows a supervised position, batches grouped so that their rows share one, the same adapter
from a whole run with and without sharing.

Real CoNLL-2003 instructions (iepile's converter) and a tiny llama with the default model's tokenizer and chat
template, in fp32 so that results compare to rounding.
"""

from __future__ import annotations

import json
import pathlib

import pytest
import torch

from iepile.convert import convert
from iepile.modeling.loading import load_model_and_tokenizer
from iepile.modeling.prompts import PromptBuilder
from iepile.training import prefix
from iepile.training.recipe import SupervisedCollator, TokenBudgetBatchSampler, TrainConfig, encode_rows, read_rows, train
from test_train import CONLL_TYPES, conll_records, max_difference, saved_tensors, tiny_config, write_jsonl
from tiny_model import build_tiny_model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> pathlib.Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="module")
def conll_rows(tmp_path_factory, data_dir) -> pathlib.Path:
    records = conll_records(data_dir / "en" / "ner" / "conll2003" / "train.txt", 48)
    rows = convert(records, task="NER", language="en", schema=CONLL_TYPES, split="train", source="conll2003")
    return write_jsonl(tmp_path_factory.mktemp("conll") / "train.jsonl", rows)


def loss_and_gradients(model, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad()
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "shift_labels")}
    logits = prefix.forward(model, inputs).logits
    loss = torch.nn.functional.cross_entropy(logits.float(), batch["shift_labels"], reduction="sum")
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_a_shared_prefix_batch_has_the_loss_and_gradients_of_the_plain_batch(tiny_model, conll_rows):
    model, tokenizer = load_model_and_tokenizer(str(tiny_model), dtype="fp32", for_training=True)
    model.config.use_cache = False
    model.train()
    config = TrainConfig(train_file=str(conll_rows), output_dir="unused", cutoff_len=512)
    examples, _ = encode_rows(read_rows(conll_rows)[:6], PromptBuilder(tokenizer), config)

    shared = SupervisedCollator(tokenizer.pad_token_id, "padded", share_prefix=True)(examples)
    plain = SupervisedCollator(tokenizer.pad_token_id, "padded")(examples)
    # the system prompt and the NER task sentence, once; the rest of every row padded as usual
    assert shared["prefix_ids"].shape[0] == 1 and shared["prefix_ids"].shape[1] >= 60
    width = shared["prefix_ids"].shape[1]
    assert shared["input_ids"].shape == (6, plain["input_ids"].shape[1] - width)
    assert torch.equal(shared["attention_mask"], plain["attention_mask"])
    assert torch.equal(shared["shift_labels"], plain["shift_labels"])

    plain_loss, plain_gradients = loss_and_gradients(model, plain)
    shared_loss, shared_gradients = loss_and_gradients(model, shared)
    torch.testing.assert_close(shared_loss, plain_loss, rtol=1e-5, atol=1e-4)
    assert shared_gradients.keys() == plain_gradients.keys()
    for name, gradient in plain_gradients.items():
        torch.testing.assert_close(shared_gradients[name], gradient, rtol=1e-4, atol=1e-6, msg=name)


def test_the_prefix_ends_before_the_first_supervised_prediction_and_leaves_every_row_a_token():
    common = list(range(100, 120))
    features = [
        {"input_ids": common + [1, 2, 3], "labels": [-100] * 21 + [2, 3]},   # answer at 21: logit at 20
        {"input_ids": common + [4, 5, 6, 7], "labels": [-100] * 22 + [6, 7]},
    ]
    assert prefix.shared_prefix_length(features) == 20  # the common tokens, up to position 20 (exclusive)
    early = [{"input_ids": common + [1], "labels": [-100] * 12 + common[12:] + [1]}, features[1]]
    assert prefix.shared_prefix_length(early) == 11  # position 11 predicts the supervised token 12
    whole = [{"input_ids": common, "labels": [-100] * 20}, {"input_ids": common, "labels": [-100] * 20}]
    assert prefix.shared_prefix_length(whole) == 19  # one token of its own per row
    different = [features[0], {"input_ids": [100, 101, 7] + common[3:], "labels": [-100] * 20}]
    assert prefix.split_shared_prefix(different) is None  # 2 common tokens: not worth a pass
    assert prefix.split_shared_prefix(features[:1]) is None
    split = prefix.split_shared_prefix(features)
    assert split[0] == common and split[1][1]["input_ids"] == [4, 5, 6, 7] and split[1][1]["labels"] == [-100, -100, 6, 7]


def test_token_budget_batches_hold_one_prompt_group_each():
    lengths = [7, 300, 12, 700, 150, 150, 40, 699, 3, 512, 90, 91] * 5
    groups = ["ner", "re", "ee"] * 20
    sampler = TokenBudgetBatchSampler(lengths, max_tokens=1024, max_examples=8, seed=1, groups=groups)
    batches = list(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        assert len({groups[i] for i in batch}) == 1
        assert len(batch) <= 8 and len(batch) * max(lengths[i] for i in batch) <= 1024


def test_grouped_batches_are_ordered_by_prompt_group_within_each_window():
    from iepile.training.recipe import EpochSeededLengthGroupedSampler

    lengths = [(i * 37) % 200 + 10 for i in range(98)]
    groups = [["ner", "re"][i % 2] for i in range(98)]
    order = list(EpochSeededLengthGroupedSampler(lengths, 4, seed=3, groups=groups))
    assert sorted(order) == list(range(98))
    batches = [order[b:b + 4] for b in range(0, 98, 4)]
    mixed = [b for b in batches if len({groups[i] for i in b}) > 1]
    assert len(mixed) <= 1  # one window of 50 batches holds all 25: at most the batch at the group boundary
    assert [len(b) for b in batches] == [4] * 24 + [2]  # the short batch stays last: every batch a cut of the window
    first_groups = [groups[b[0]] for b in batches[:-1]]
    assert first_groups != sorted(first_groups)  # the batches are shuffled, not one group after the other
    assert order == list(EpochSeededLengthGroupedSampler(lengths, 4, seed=3, groups=groups))  # seeded


def test_training_with_and_without_the_shared_prefix_learns_the_same_adapter(tiny_model, conll_rows, tmp_path):
    settings = dict(max_steps=3, batching="padded", learning_rate=1e-2)  # the same random batches in both runs
    shared = train(tiny_config(tiny_model, conll_rows, tmp_path / "shared", **settings))
    plain = train(tiny_config(tiny_model, conll_rows, tmp_path / "plain", shared_prefix=False, **settings))
    assert shared.tokens_seen == plain.tokens_seen  # every token of a row is counted, its prefix included
    # Adam moves every weight by about lr (1e-2) a step; kernels that sum in another order (AVX-512 vs AVX2) leave
    # differences of 1e-5 after three steps: 1e-4 is 1 % of one step
    assert max_difference(saved_tensors(shared.saved_dir), saved_tensors(plain.saved_dir)) < 1e-4
    recorded = json.loads((tmp_path / "shared" / "train_config.json").read_text())["config"]
    assert recorded["shared_prefix"] is True


def test_gradient_checkpointing_and_packed_batches_turn_the_sharing_off():
    config = TrainConfig(train_file="x", output_dir="y")
    assert config.shares_prefix
    assert not TrainConfig(train_file="x", output_dir="y", gradient_checkpointing=True).shares_prefix
    assert not TrainConfig(train_file="x", output_dir="y", batching="packed").shares_prefix
    assert not TrainConfig(train_file="x", output_dir="y", shared_prefix=False).shares_prefix


def test_one_compiled_block_serves_every_layer_with_a_shared_prefix(conll_rows, tmp_path):
    """--compile with shared prefixes: the decoder block reads each layer's prefix from one stacked cache with the
    layer number as a graph input, so the graphs do not grow with the layers (a DynamicCache made one per layer,
    and dynamo ran all layers after the eighth eagerly); the run learns what the eager run learns."""
    from torch._dynamo.utils import counters

    deep = build_tiny_model(tmp_path / "deep", seed=0, num_layers=6)
    settings = dict(max_steps=3, batching="padded", learning_rate=1e-2, finetuning="full")
    eager = train(tiny_config(deep, conll_rows, tmp_path / "eager", **settings))
    counters.clear()
    compiled = train(tiny_config(deep, conll_rows, tmp_path / "compiled", compile=True, **settings))
    assert 0 < counters["stats"]["unique_graphs"] < 6
    assert max_difference(saved_tensors(eager.saved_dir), saved_tensors(compiled.saved_dir)) < 1e-4
