"""Merge a LoRA adapter into its base model and save plain safetensors.

Why: a merged model loads with a bare ``AutoModelForCausalLM.from_pretrained`` (no peft), runs at full speed in
any engine (vLLM, llama.cpp converters) and gives the same outputs as base + adapter (pinned by a test).
"""

from __future__ import annotations

import os
import pathlib

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def export_merged(
    adapter: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    model: str | None = None,
    dtype: str = "auto",
) -> pathlib.Path:
    """Merge ``adapter`` into its base (``model``, else the base recorded by ``iepile train``) and save it.

    The merge is computed in fp32 and the result saved in ``dtype`` (``auto`` = the base model's own dtype).
    """
    import json

    from transformers import AutoConfig

    from iepile.fileio import write_text_atomic
    from iepile.modeling.loading import IEPILE_META_FILE, load_resolved, resolve_model

    adapter = pathlib.Path(adapter)
    spec = resolve_model(model, adapter)
    meta, base_path = spec.meta, spec.path
    merged, tokenizer = load_resolved(spec, dtype="fp32", device="cpu")
    save_dtype = _save_dtype(dtype, AutoConfig.from_pretrained(base_path))
    merged = merged.to(save_dtype)
    output = pathlib.Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(output)
    tokenizer.padding_side = "right"
    tokenizer.save_pretrained(output)
    record = {**meta, "base_model": str(base_path), "merged_from": str(adapter.resolve()),
              "dtype": str(save_dtype).removeprefix("torch.")}
    write_text_atomic(output / IEPILE_META_FILE, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return output


def _save_dtype(dtype: str, base_config):
    import torch

    from iepile.modeling.loading import resolve_dtype

    if dtype != "auto":
        return resolve_dtype(dtype, "cpu")
    base_dtype = getattr(base_config, "dtype", None) or getattr(base_config, "torch_dtype", None)
    if isinstance(base_dtype, str):
        base_dtype = getattr(torch, base_dtype, None)
    return base_dtype if isinstance(base_dtype, torch.dtype) else torch.float32
