"""Shared prompt prefixes: the tokens every example of a batch starts with are computed once, not once per row.

IEPile prompts of one task and language begin with the same tokens: the chat template's system prompt and the task
sentence (75 tokens for English NER and RE, 127-156 for Chinese, 321 for PHEE whose schema is fixed too): 45 % of
all the tokens of the ``make reproduce`` mix. A batch whose rows share such a prefix runs it as one row with the
KV cache on, broadcasts its keys and values to every row, and runs only the rest of each row on top of them.
The forward values are the same, and the gradient that reaches the prefix is the sum over the rows, which is what
the plain batch computes too: loss and gradients agree with the plain batch to float rounding (a test pins it), and
a step costs less by about the share of prefix tokens (bench/RESULTS.md).

The collator splits a batch (:func:`split_shared_prefix`); the trainer's loss runs it (:func:`forward`). Batches
are grouped so that their rows share a prefix by the samplers in :mod:`iepile.training.data`. Prediction does the
same without gradients, across its own batches (``iepile.inference.generators``).
"""

from __future__ import annotations

import functools
from typing import Any

MIN_SHARED_TOKENS = 8  # below this the extra prefix pass costs more than it saves


def shared_prefix_length(features: list[dict]) -> int:
    """Tokens every example starts with, ending before the first position whose next token is supervised (those
    positions need a logit per row) and leaving every row at least one token of its own."""
    first = features[0]["input_ids"]
    limit = min(len(f["input_ids"]) - 1 for f in features)
    limit = min([limit] + [first_supervised(f["labels"]) - 1 for f in features])
    length = max(limit, 0)
    for feature in features[1:]:
        ids = feature["input_ids"]
        common = 0
        while common < length and ids[common] == first[common]:
            common += 1
        length = common
    return length


def first_supervised(labels: list[int]) -> int:
    return next((i for i, label in enumerate(labels) if label != -100), len(labels))


def split_shared_prefix(features: list[dict]) -> tuple[list[int], list[dict]] | None:
    """The shared prefix and each example's rest, or None where sharing would not pay (one row, a short prefix)."""
    if len(features) < 2:
        return None
    length = shared_prefix_length(features)
    if length < MIN_SHARED_TOKENS:
        return None
    rests = [{**f, "input_ids": f["input_ids"][length:], "labels": f["labels"][length:]} for f in features]
    return features[0]["input_ids"][:length], rests


def forward(model: Any, inputs: dict):
    """The model's outputs for a batch, its ``prefix_ids`` (if the collator split one off) computed once.

    The prefix runs through the bare module (not a DDP wrapper: one forward per step there), and eagerly (it is one
    row; compiled, its cache would be one more graph per layer); a gradient reaches each weight once per backward all
    the same (autograd sums its uses before the weight's hook fires)."""
    import torch

    prefix_ids = inputs.pop("prefix_ids", None)
    if prefix_ids is None:
        return model(**inputs)
    module = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
    cache_class = stacked_prefix_cache_class()
    cache = cache_class(config=module.config)
    with torch.compiler.set_stance("force_eager"):
        module(input_ids=prefix_ids, cache=cache, use_cache=True, logits_to_keep=1)
    cache.stack_prefix()
    return model(**inputs, cache=cache, use_cache=True)


def compile_blocks_for_prefixes() -> None:
    """With ``--compile``: a decoder block's layer number becomes an input of its compiled graph instead of a
    constant, so that one graph reads every layer's prefix from the stacked cache (:func:`stacked_prefix_cache_class`).
    A process-wide dynamo setting; it only turns integer attributes of modules into graph inputs."""
    import torch._dynamo

    torch._dynamo.config.allow_unspec_int_on_nn_module = True


@functools.cache  # one class: dynamo guards on the cache's type
def stacked_prefix_cache_class():
    """A ``DynamicCache`` that, once filled with the prefix (:meth:`stack_prefix`), holds every layer's keys and values
    in one tensor and answers ``update`` from it without storing anything.

    Why: a decoder block compiled once for all layers (``--compile``) reads a ``DynamicCache`` through a Python list
    indexed by the layer's number and a per-layer "initialised" flag, so dynamo compiled one graph per layer and
    gave up after eight (the rest ran eagerly). Indexing one stacked tensor by the layer number, an input of the
    graph rather than a constant (``allow_unspec_int_on_nn_module``, set by ``train()`` with ``--compile``), keeps
    it one graph. Without compilation it is the same computation. The prefix's rows are broadcast, not copied."""
    from transformers import DynamicCache

    class StackedPrefixCache(DynamicCache):
        prefix_keys = prefix_values = None

        def stack_prefix(self) -> None:
            import torch

            self.prefix_keys = torch.stack([layer.keys for layer in self.layers])
            self.prefix_values = torch.stack([layer.values for layer in self.layers])

        def update(self, key_states, value_states, layer_idx, *args, **kwargs):
            if self.prefix_keys is None:
                return super().update(key_states, value_states, layer_idx, *args, **kwargs)
            import torch

            rows = key_states.shape[0]
            keys = self.prefix_keys[layer_idx].expand(rows, -1, -1, -1)
            values = self.prefix_values[layer_idx].expand(rows, -1, -1, -1)
            return torch.cat([keys, key_states], dim=-2), torch.cat([values, value_states], dim=-2)

    return StackedPrefixCache
