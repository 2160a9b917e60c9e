"""A tiny llama with the default model's tokenizer, built from a config: fast tests of the real training path.

Same tokenizer and chat template as the default model, so prompts, masking and data handling are exercised
exactly as in real runs; only the network is small (about 3.3 M parameters, most of them the embedding).
"""

from __future__ import annotations

import os
import pathlib


def build_tiny_model(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    tokenizer_from: str | os.PathLike | None = None,
) -> pathlib.Path:
    """Save a randomly initialised (seeded) llama as a HF folder and return it; reuses an existing one."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from iepile.modeling.loading import load_tokenizer

    out_dir = pathlib.Path(out_dir)
    if (out_dir / "config.json").is_file():
        return out_dir
    tokenizer = load_tokenizer(tokenizer_from, padding_side="right")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
