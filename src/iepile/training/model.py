"""The model of a run: loaded in the right dtype, with LoRA (or an existing adapter) or fully trainable."""

from __future__ import annotations

from typing import Any

from iepile.training.config import LORA_TARGETS, TrainConfig

# ---- 3. model ------------------------------------------------------------------------------------------------------


def load_model(config: TrainConfig):
    """Base model (+ LoRA / existing adapter). LoRA keeps frozen weights in bf16 where supported (half the memory
    and about twice as fast on CPUs with native bf16); full fine-tuning keeps fp32 master weights under autocast."""
    import torch

    from iepile.modeling.loading import default_device, load_model_and_tokenizer, resolve_dtype

    compute_dtype = resolve_dtype(config.dtype, default_device())
    weights_dtype = "fp32" if config.finetuning == "full" or compute_dtype == torch.float32 else "bf16"
    if compute_dtype == torch.float16:
        weights_dtype = "fp32"
    model, tokenizer = load_model_and_tokenizer(config.model, dtype=weights_dtype, device="cpu", for_training=True)
    model.config.use_cache = False  # no KV cache in training; also required for leak-free packed batches
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if config.finetuning == "full":
        if config.init_adapter:
            model = merge_adapter(model, config.init_adapter)
        return model, tokenizer
    return with_lora(model, config), tokenizer


def lora_targets(model: Any, requested: list[str] | None) -> list[str] | str:
    """The LoRA target modules: as requested, or the per-architecture default, or every linear layer."""
    if requested and [t.lower() for t in requested] == ["all"]:
        return "all-linear"
    if requested:
        return list(requested)
    return LORA_TARGETS.get(model.config.model_type, "all-linear")


def with_lora(model: Any, config: TrainConfig):
    from peft import LoraConfig, PeftModel, get_peft_model

    if config.init_adapter:
        return PeftModel.from_pretrained(model, config.init_adapter, is_trainable=True)
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=config.lora_r,
        lora_alpha=config.lora_alpha or 2 * config.lora_r,
        lora_dropout=config.lora_dropout,
        target_modules=lora_targets(model, config.lora_targets),
    )
    return get_peft_model(model, lora)


def merge_adapter(model: Any, adapter: str):
    from peft import PeftModel

    return PeftModel.from_pretrained(model, adapter).merge_and_unload()


def inherit_adapter_template(config: TrainConfig) -> None:
    """Continuing an adapter without --template: keep the prompt format it was trained with."""
    from iepile.modeling.loading import saved_template

    if config.template is None and config.init_adapter:
        config.template = saved_template(config.init_adapter)


def prompt_builder(tokenizer: Any, config: TrainConfig):
    from iepile.modeling.prompts import PromptBuilder

    return PromptBuilder(tokenizer, config.template, system=config.system)
