"""Named prompt templates of the released IEPile models, reproduced token for token from the reference trainer.

Why token for token: a LoRA adapter only works with the exact prompt tokens it was trained on. The reference
(a fork of an early LLaMA-Factory) encodes each template element SEPARATELY without special tokens and concatenates
the ids; special tokens are inserted by id. We do the same, so continuing from or evaluating a released adapter
(llama2-13b-iepile-lora: ``llama2``; baichuan2-13b-iepile-lora: ``baichuan2``; llama3-8b-iepile-lora: ``alpaca``;
qwen1.5-14b-iepile-lora: ``qwen``; OneKE: ``llama2_zh``) sees the same prompt as in its training.

Single-turn shape of the generic templates: BOS (if the tokenizer has one and adds it) + enc(prefix with system)
+ enc(sep) [both omitted when the rendered prefix is empty] + enc(prompt with the query). The ``llama2`` family puts
the system block inside the user text and tokenises ``[INST] <<SYS>>...<</SYS>>\\n\\n{query} [/INST]`` in one call.
Answer = enc(answer) + EOS; templates with ``replace_eos`` use their first stop word as EOS (Qwen: ``<|im_end|>``).

Fixed on purpose: the query is never searched for placeholders (the reference replaced ``{{idx}}`` inside user
text), and missing special tokens are an error instead of being added without resizing the embeddings.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Token:
    """A special token inserted by id (never tokenised from text)."""

    text: str


Element = str | Token


@dataclasses.dataclass(frozen=True)
class Template:
    name: str
    prefix: tuple[Element, ...]  # the system block; "{{system}}" is replaced
    prompt: tuple[Element, ...]  # the user turn; "{{query}}" is replaced (and "{{idx}}" by the turn number, 1)
    system: str
    sep: tuple[Element, ...] = ()
    stop_words: tuple[str, ...] = ()
    efficient_eos: bool = False
    replace_eos: bool = False
    system_inside_query: bool = False  # the llama2 family


TEMPLATES: dict[str, Template] = {}


def register(template: Template) -> Template:
    TEMPLATES[template.name] = template
    return template


LLAMA2_SYSTEM = (
    "You are a helpful, respectful and honest assistant. "
    "Always answer as helpfully as possible, while being safe. "
    "Your answers should not include any harmful, unethical, "
    "racist, sexist, toxic, dangerous, or illegal content. "
    "Please ensure that your responses are socially unbiased and positive in nature.\n\n"
    "If a question does not make any sense, or is not factually coherent, "
    "explain why instead of answering something not correct. "
    "If you don't know the answer to a question, please don't share false information."
)
BILINGUAL_SYSTEM = "You are a helpful assistant. 你是一个乐于助人的助手。"
LLAMA2_SYSTEM_BLOCK = "<<SYS>>\n{{system}}\n<</SYS>>\n\n"
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)

register(
    Template(
        name="alpaca",
        prefix=("{{system}}",),
        prompt=("### Instruction:\n{{query}}\n\n### Response:\n",),
        system="Below is an instruction that describes a task. Write a response that appropriately completes the request.",
        sep=("\n\n",),
    )
)
register(
    Template(
        name="llama2",
        prefix=(LLAMA2_SYSTEM_BLOCK,),
        prompt=("[INST] {{query}} [/INST]",),
        system=LLAMA2_SYSTEM,
        system_inside_query=True,
    )
)
register(
    Template(
        name="llama2_zh",
        prefix=(LLAMA2_SYSTEM_BLOCK,),
        prompt=("[INST] {{query}} [/INST]",),
        system=BILINGUAL_SYSTEM,
        system_inside_query=True,
    )
)
register(
    Template(
        name="baichuan",
        prefix=("{{system}}",),
        prompt=(Token("<reserved_102>"), "{{query}}", Token("<reserved_103>")),
        system="",
        efficient_eos=True,
    )
)
register(
    Template(
        name="baichuan2",
        prefix=("{{system}}",),
        prompt=(Token("<reserved_106>"), "{{query}}", Token("<reserved_107>")),
        system="",
        efficient_eos=True,
    )
)
register(
    Template(
        name="qwen",
        prefix=(Token("<|im_start|>"), "system\n{{system}}"),
        prompt=(
            Token("<|im_start|>"),
            "user\n{{query}}",
            Token("<|im_end|>"),
            "\n",
            Token("<|im_start|>"),
            "assistant\n",
        ),
        system="You are a helpful assistant.",
        sep=(Token("<|im_end|>"), "\n"),
        stop_words=("<|im_end|>",),
        efficient_eos=True,
        replace_eos=True,
    )
)
register(
    Template(
        name="chatglm2",
        prefix=(Token("[gMASK]"), Token("sop"), "{{system}}"),
        prompt=("[Round {{idx}}]\n\n问：{{query}}\n\n答：",),
        system="",
        sep=("\n\n",),
        efficient_eos=True,
    )
)
register(
    Template(
        name="chatglm3",
        prefix=(Token("[gMASK]"), Token("sop"), Token("<|system|>"), "\n", "{{system}}"),
        prompt=(Token("<|user|>"), "\n", "{{query}}", Token("<|assistant|>")),
        system=(
            "You are ChatGLM3, a large language model trained by Zhipu.AI. "
            "Follow the user's instructions carefully. Respond using markdown."
        ),
        stop_words=("<|user|>", "<|observation|>"),
        efficient_eos=True,
    )
)
register(
    Template(
        name="llama3",
        prefix=("<|start_header_id|>system<|end_header_id|>\n\n{{system}}<|eot_id|>",),
        prompt=(
            "<|start_header_id|>user<|end_header_id|>\n\n{{query}}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
        ),
        system="You are a helpful assistant.",
        stop_words=("<|eot_id|>",),
        replace_eos=True,
    )
)
register(
    Template(
        name="llama3_zh",
        prefix=("<|start_header_id|>system<|end_header_id|>\n\n{{system}}<|eot_id|>",),
        prompt=(
            "<|start_header_id|>user<|end_header_id|>\n\n{{query}}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
        ),
        system=BILINGUAL_SYSTEM,
        stop_words=("<|eot_id|>",),
        replace_eos=True,
    )
)
register(Template(name="mistral", prefix=("{{system}}",), prompt=("[INST] {{query}} [/INST]",), system="", sep=(" ",)))
register(Template(name="vicuna", prefix=("{{system}}",), prompt=("USER: {{query}} ASSISTANT:",), system=VICUNA_SYSTEM))
register(Template(name="vanilla", prefix=(), prompt=("{{query}}",), system=""))
register(
    Template(
        name="chatml",  # plain ChatML without a system turn (Qwen-style tokens, no default system text)
        prefix=(),
        prompt=(Token("<|im_start|>"), "user\n{{query}}", Token("<|im_end|>"), "\n", Token("<|im_start|>"), "assistant\n"),
        system="",
        stop_words=("<|im_end|>",),
        efficient_eos=True,
        replace_eos=True,
    )
)

# Names meaning "the tokenizer's own chat template" (apply_chat_template).
TOKENIZER_TEMPLATE_NAMES = (None, "", "auto", "default", "tokenizer")


def get_template(name: str) -> Template:
    if name not in TEMPLATES:
        known = ", ".join(sorted(TEMPLATES))
        raise ValueError(f"unknown prompt template {name!r}; known: {known}, or 'auto' for the tokenizer's chat template")
    return TEMPLATES[name]


def render_elements(elements: tuple[Element, ...], *, system: str = "", query: str = "") -> list[Element]:
    """Fill placeholders in the TEMPLATE text only (the query itself is never searched for placeholders)."""
    rendered: list[Element] = []
    for element in elements:
        if isinstance(element, Token):
            rendered.append(element)
            continue
        before, has_query, after = element.partition("{{query}}")
        fill = lambda text: text.replace("{{system}}", system, 1).replace("{{idx}}", "1", 1)  # noqa: E731
        rendered.append(fill(before) + (query + fill(after) if has_query else ""))
    return rendered


def prompt_elements(template: Template, query: str, system: str | None = None) -> list[Element]:
    """The single-turn prompt as a list of elements, after the optional BOS (added by the prompt builder)."""
    system = system or template.system
    if template.system_inside_query:
        system_block = template.prefix[0].replace("{{system}}", system)
        return render_elements(template.prompt, query=system_block + query)
    prefix = [e for e in render_elements(template.prefix, system=system) if e != ""]
    sep = render_elements(template.sep) if prefix else []
    return prefix + sep + render_elements(template.prompt, query=query)


def render_text(template: Template, query: str, system: str | None = None) -> str:
    """The prompt as readable text (special tokens spelled out, BOS not shown); for docs, tests and debugging."""
    return "".join(e.text if isinstance(e, Token) else e for e in prompt_elements(template, query, system))
