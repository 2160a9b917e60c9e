"""Prompt templates, the prompt builder (masking, length rules) and model path resolution.

These use only the default model's tokenizer (no network weights), so they are fast.
"""

from __future__ import annotations

import json

import pytest

from iepile.modeling.loading import bf16_supported, load_tokenizer, resolve_dtype, resolve_model_path
from iepile.modeling.prompts import (
    DROPPED_SOURCE,
    DROPPED_TARGET,
    IGNORE_INDEX,
    KEPT,
    TRUNCATED,
    PromptBuilder,
)
from iepile.modeling.templates import TEMPLATES, get_template, render_text

NER_EN = (
    "You are an expert in named entity recognition. Please extract entities that match the schema definition from "
    "the input. Return an empty list if the entity type does not exist. Please respond in the format of a JSON string."
)


def instruction(text: str, schema=("location", "misc", "organisation", "person")) -> str:
    return json.dumps({"instruction": NER_EN, "schema": list(schema), "input": text}, ensure_ascii=False)


ANSWER = json.dumps({"location": ["Brussels"], "misc": [], "organisation": ["EU"], "person": []})
LONG_TEXT = "The European Commission said on Thursday it disagreed with German advice to consumers. " * 20


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(padding_side="right")


# ---- template strings, exactly as the reference renders them ---------------------------------------------------------


def test_llama2_zh_renders_the_oneke_prompt():
    # Appendix A of the reference behaviour document (BOS is a separate token).
    expected = "[INST] <<SYS>>\nYou are a helpful assistant. 你是一个乐于助人的助手。\n<</SYS>>\n\nQ [/INST]"
    assert render_text(get_template("llama2_zh"), "Q") == expected


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "alpaca",
            "Below is an instruction that describes a task. Write a response that appropriately completes the "
            "request.\n\n### Instruction:\nQ\n\n### Response:\n",
        ),
        ("baichuan2", "<reserved_106>Q<reserved_107>"),
        ("baichuan", "<reserved_102>Q<reserved_103>"),
        (
            "qwen",
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n"
            "<|im_start|>assistant\n",
        ),
        (
            "chatglm3",
            "[gMASK]sop<|system|>\nYou are ChatGLM3, a large language model trained by Zhipu.AI. Follow the user's "
            "instructions carefully. Respond using markdown.<|user|>\nQ<|assistant|>",
        ),
        ("mistral", "[INST] Q [/INST]"),
        ("vanilla", "Q"),
        (
            "llama3",
            "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        ),
    ],
)
def test_template_strings(name, expected):
    assert render_text(get_template(name), "Q") == expected


def test_llama2_uses_metas_system_text():
    text = render_text(get_template("llama2"), "Q")
    assert text.startswith("[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant. Always answer")
    assert text.endswith("please don't share false information.\n<</SYS>>\n\nQ [/INST]")


def test_mistral_with_a_system_text_puts_a_space_before_the_prompt():
    assert render_text(get_template("mistral"), "Q", system="S") == "S [INST] Q [/INST]"


def test_query_text_is_never_treated_as_a_placeholder():
    # The reference replaced "{{idx}}" inside the user's text; ours leaves user text alone.
    query = "a {{idx}} b {{system}} c {{query}}"
    for name in ("alpaca", "vicuna", "llama2"):
        assert query in render_text(get_template(name), query)


def test_unknown_template_names_the_choices():
    with pytest.raises(ValueError, match="llama2_zh"):
        get_template("llama-2")


# ---- token ids: element by element, as the reference encodes them -------------------------------------------------


def test_named_template_encodes_each_element_separately(tokenizer):
    builder = PromptBuilder(tokenizer, "alpaca")
    query = instruction("EU rejects German call")
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    expected = (
        encode(get_template("alpaca").system)
        + encode("\n\n")
        + encode("### Instruction:\n" + query + "\n\n### Response:\n")
    )
    assert builder.prompt_ids(query) == expected


def test_llama2_tokenises_the_whole_inst_block_in_one_call(tokenizer):
    builder = PromptBuilder(tokenizer, "llama2_zh")
    query = instruction("EU rejects German call")
    expected = tokenizer.encode(render_text(get_template("llama2_zh"), query), add_special_tokens=False)
    assert builder.prompt_ids(query) == expected  # SmolLM2's tokenizer does not add a BOS (add_bos_token False)


def test_special_tokens_are_inserted_by_id(tokenizer):
    builder = PromptBuilder(tokenizer, "qwen")
    ids = builder.prompt_ids("Q")
    im_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids[0] == im_start and ids.count(im_start) == 3
    assert builder.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")  # replace_eos


def test_missing_special_tokens_are_an_error_not_a_silent_resize(tokenizer):
    with pytest.raises(ValueError, match="<reserved_106>"):
        PromptBuilder(tokenizer, "baichuan2").prompt_ids("Q")


def test_default_is_the_tokenizers_chat_template(tokenizer):
    query = instruction("EU rejects German call")
    builder = PromptBuilder(tokenizer)
    expected = tokenizer.apply_chat_template(
        [{"role": "user", "content": query}], add_generation_prompt=True, tokenize=False
    )
    assert builder.prompt_text(query) == expected
    assert builder.prompt_text(query).endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert builder.eos_token_ids == [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    assert builder.stop_strings == ["<|im_end|>"]


USABLE_WITH_SMOLLM = [None, "alpaca", "llama2", "llama2_zh", "qwen", "chatml", "mistral", "vicuna", "vanilla"]


@pytest.mark.parametrize("template", USABLE_WITH_SMOLLM)
def test_training_and_inference_prompts_are_identical(tokenizer, template):
    builder = PromptBuilder(tokenizer, template)
    query = instruction("EU rejects German call to boycott British lamb .")
    example = builder.training_example(query, ANSWER, max_source_length=512, max_target_length=256, cutoff_len=1024)
    prompt = builder.prompt_ids(query)  # what inference feeds the model
    assert example["input_ids"][: len(prompt)] == prompt
    assert example["labels"][: len(prompt)] == [IGNORE_INDEX] * len(prompt)
    answer = example["labels"][len(prompt) :]
    assert answer == example["input_ids"][len(prompt) :]
    assert answer[-1] == builder.eos_token_id
    assert tokenizer.decode(answer[:-1]) == ANSWER


def test_all_registered_templates_render():
    for name, template in TEMPLATES.items():
        assert "Q" in render_text(template, "Q"), name


# ---- length rules ------------------------------------------------------------------------------------------------


def test_long_input_is_shortened_inside_the_input_text(tokenizer):
    builder = PromptBuilder(tokenizer, "llama2_zh")
    query = instruction(LONG_TEXT)
    full_prompt = builder.prompt_ids(query)
    example = builder.encode_example(query, ANSWER, max_source_length=120, max_target_length=64, cutoff_len=512)
    assert example.status == TRUNCATED
    prompt = example.input_ids[: example.labels.count(IGNORE_INDEX)]
    assert len(prompt) <= 120 < len(full_prompt)
    # the end-of-prompt marker and the JSON's closing characters survive
    tail = tokenizer.encode(" [/INST]", add_special_tokens=False)
    assert prompt[-len(tail) :] == tail == full_prompt[-len(tail) :]
    text = tokenizer.decode(prompt)
    assert text.endswith('"} [/INST]')
    shortened = json.loads(text[text.index("{") : text.rindex("}") + 1])
    assert shortened["schema"] == ["location", "misc", "organisation", "person"]
    assert LONG_TEXT.startswith(shortened["input"]) and 0 < len(shortened["input"]) < len(LONG_TEXT)


def test_shortening_keeps_as_much_input_as_fits(tokenizer):
    builder = PromptBuilder(tokenizer)
    query = instruction(LONG_TEXT)
    ids = builder.prompt_ids(query, max_length=150)
    assert len(ids) <= 150
    assert len(ids) >= 147  # one more character of input would not fit (a token is at most a few characters)


def test_non_json_instructions_are_shortened_at_their_end(tokenizer):
    builder = PromptBuilder(tokenizer, "alpaca")
    ids = builder.prompt_ids("word " * 400, max_length=60)
    assert len(ids) <= 60 and tokenizer.decode(ids).endswith("\n\n### Response:\n")


def test_answer_that_does_not_fit_is_dropped_never_cut(tokenizer):
    builder = PromptBuilder(tokenizer)
    long_answer = json.dumps({"person": ["Peter Blackburn"] * 40})
    query = instruction("Peter Blackburn")
    assert builder.training_example(query, long_answer, max_source_length=512, max_target_length=50, cutoff_len=1024) is None
    status = builder.encode_example(query, long_answer, max_source_length=512, max_target_length=50, cutoff_len=1024)
    assert status.status == DROPPED_TARGET


def test_cutoff_len_shortens_the_prompt_to_keep_the_whole_answer(tokenizer):
    builder = PromptBuilder(tokenizer)
    query = instruction(LONG_TEXT)
    example = builder.encode_example(query, ANSWER, max_source_length=1000, max_target_length=100, cutoff_len=200)
    assert example.status == TRUNCATED and len(example.input_ids) <= 200
    answer = builder.answer_ids(ANSWER)
    assert example.input_ids[-len(answer) :] == answer == example.labels[-len(answer) :]


def test_prompt_that_cannot_fit_even_without_input_is_dropped(tokenizer):
    builder = PromptBuilder(tokenizer)
    query = instruction("x", schema=[f"type number {i}" for i in range(60)])
    example = builder.encode_example(query, ANSWER, max_source_length=100, max_target_length=100, cutoff_len=400)
    assert example.status == DROPPED_SOURCE
    with pytest.raises(ValueError, match="does not fit"):
        builder.prompt_ids(query, max_length=100)


def test_short_examples_are_kept_untouched(tokenizer):
    builder = PromptBuilder(tokenizer)
    query = instruction("EU rejects German call")
    example = builder.encode_example(query, ANSWER, max_source_length=512, max_target_length=256, cutoff_len=1024)
    assert example.status == KEPT
    assert example.input_ids == builder.prompt_ids(query) + builder.answer_ids(ANSWER)


# ---- model paths -------------------------------------------------------------------------------------------------


def test_resolve_model_path_rejects_missing_and_adapter_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        resolve_model_path(str(tmp_path / "nowhere"))
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ValueError, match="adapter"):
        resolve_model_path(str(tmp_path))


def test_resolve_model_path_keeps_local_folders(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model_path(str(tmp_path)) == tmp_path


def test_dtype_names():
    import torch

    assert resolve_dtype("fp32", "cpu") == torch.float32
    assert resolve_dtype("bf16", "cpu") == torch.bfloat16
    assert resolve_dtype("auto", "cpu") == (torch.bfloat16 if bf16_supported("cpu") else torch.float32)
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("int3", "cpu")
