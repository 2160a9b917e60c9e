"""Fixtures shared by the predict / extract / constrain tests: a tiny random llama with the default tokenizer.

The tiny model's layers are re-drawn with a large spread so that greedy decoding writes varied tokens (a freshly
initialised tied-embedding model just repeats its last prompt token, which would make the tests vacuous).
"""

from __future__ import annotations

import pytest

from iepile.instructions import parse_instruction

TINY_SEED = 0


def perturb(model, seed: int = TINY_SEED) -> None:
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "layers" in name and parameter.dim() == 2:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A saved tiny model whose weights are already perturbed (so a subprocess loads the same model)."""
    from iepile.modeling.loading import load_model_and_tokenizer
    from tiny_model import build_tiny_model

    built = build_tiny_model(tmp_path_factory.mktemp("tiny-base") / "model")
    model, tokenizer = load_model_and_tokenizer(str(built), dtype="fp32", device="cpu")
    perturb(model)
    out = tmp_path_factory.mktemp("tiny") / "model"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model_dir):
    from iepile.inference.generators import TransformersGenerator

    return TransformersGenerator.load(str(tiny_model_dir), dtype="fp32", device="cpu")


@pytest.fixture()
def tiny_generator(tiny_loaded):
    """The session's model in a fresh generator (settings changed by one test do not leak into the next)."""
    from iepile.inference.generators import TransformersGenerator

    return TransformersGenerator(tiny_loaded.model, tiny_loaded.tokenizer, tiny_loaded.prompts, batch_size=4,
                                 max_new_tokens=16)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_loaded):
    return tiny_loaded.tokenizer


class ScriptedGenerator:
    """Answers each instruction with ``answer(schema, text)``; records the batches it was given."""

    def __init__(self, tokenizer, prompts, answer, context_length=2048, max_new_tokens=64):
        self.tokenizer, self.prompts, self.answer = tokenizer, prompts, answer
        self.context_length, self.max_new_tokens = context_length, max_new_tokens
        self.batches = []

    def prompt_ids(self, instruction):
        return self.prompts.prompt_ids(instruction)

    def generate(self, requests, on_answer):
        self.batches.append(len(requests))
        for position, request in enumerate(requests):
            parsed = parse_instruction(request.instruction)
            on_answer(position, self.answer(parsed["schema"], parsed["input"]))


@pytest.fixture()
def scripted(tiny_loaded):
    def make(answer, **kwargs):
        return ScriptedGenerator(tiny_loaded.tokenizer, tiny_loaded.prompts, answer, **kwargs)

    return make
