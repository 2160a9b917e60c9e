"""The ONE place where prompts become token ids, for training and for inference alike.

Training and inference must feed the model identical prompt tokens; any difference (an extra space, a BOS, a
different tokenisation boundary) silently costs accuracy. So ``PromptBuilder.prompt_ids`` is used by both, and
``training_example`` is just ``prompt_ids`` + answer + EOS with the prompt masked out of the loss.

Length limits mean what they say (the reference ignored ``max_source_length`` and cut prompts and answers from the
right, losing the ``[/INST]``/assistant marker and teaching unterminated JSON):

- ``max_source_length``: the prompt, template included, has at most this many tokens. A longer prompt is shortened
  INSIDE the input text (the ``"input"`` value of an IEPile instruction JSON, which stays valid JSON; otherwise the
  end of the instruction text), so the template's end-of-prompt marker is always intact.
- ``max_target_length``: the answer plus its EOS has at most this many tokens; a longer answer is never cut
  (a cut JSON answer teaches broken JSON): the example is dropped and counted.
- ``cutoff_len``: prompt + answer + EOS. The prompt is shortened further to make room for the whole answer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from iepile.instructions import input_and_rebuilder

from iepile.modeling.templates import TOKENIZER_TEMPLATE_NAMES, Template, Token, get_template, prompt_elements

IGNORE_INDEX = -100

# Why an example was changed or left out; counted and reported by `iepile train`.
KEPT, TRUNCATED, DROPPED_TARGET, DROPPED_SOURCE, DROPPED_EMPTY = (
    "kept",
    "truncated",
    "dropped_target_too_long",
    "dropped_prompt_too_long",
    "dropped_empty",
)


@dataclasses.dataclass
class EncodedExample:
    status: str  # one of KEPT, TRUNCATED, DROPPED_*
    input_ids: list[int] = dataclasses.field(default_factory=list)
    labels: list[int] = dataclasses.field(default_factory=list)


class PromptBuilder:
    """Builds prompt token ids with a named template (``llama2``, ``qwen``, ...) or the tokenizer's chat template.

    ``template=None`` (or ``"auto"``/``"default"``) uses ``tokenizer.apply_chat_template`` with the instruction as the
    single user message and the generation prompt appended (for SmolLM2: ChatML with its default system turn).
    """

    def __init__(self, tokenizer: Any, template: str | None = None, *, system: str | None = None):
        self.tokenizer = tokenizer
        self.system = system
        self.template_name = None if template in TOKENIZER_TEMPLATE_NAMES else template
        self.template: Template | None = get_template(template) if self.template_name else None
        if self.template is None and not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                "the tokenizer has no chat template: choose a named prompt template (e.g. --template alpaca)"
            )
        self.eos_token_id = self._eos_token_id()
        self.eos_token_ids = self._stop_token_ids()
        self.stop_strings = [tokenizer.convert_ids_to_tokens(i) for i in self.eos_token_ids]
        self._bos_ids = self._bos()

    # ---- prompts -------------------------------------------------------------------------------------------------

    def prompt_text(self, instruction: str) -> str:
        """The prompt as text (special tokens spelled out), e.g. for engines that take strings."""
        return self.tokenizer.decode(self.prompt_ids(instruction), skip_special_tokens=False)

    def prompt_ids(self, instruction: str, max_length: int | None = None) -> list[int]:
        """Prompt token ids for one instruction; with ``max_length``, shortened inside the input text to fit.

        Raises ValueError when even an empty input text does not fit (the schema/template alone is too long).
        """
        ids = self._encode_prompt(instruction)
        if max_length is None or len(ids) <= max_length:
            return ids
        shortened = self._shortened_prompt(instruction, max_length)
        if shortened is None:
            raise ValueError(f"the prompt does not fit in {max_length} tokens even with an empty input text")
        return shortened

    def answer_ids(self, output: str) -> list[int]:
        """The supervised answer: its tokens followed by the EOS the model must learn to emit."""
        return self.tokenizer.encode(output, add_special_tokens=False) + [self.eos_token_id]

    # ---- training examples ---------------------------------------------------------------------------------------

    def encode_example(
        self, instruction: str, output: str, *, max_source_length: int, max_target_length: int, cutoff_len: int
    ) -> EncodedExample:
        """Encode one supervised example under the length limits, saying what happened to it."""
        if not instruction or not output:
            return EncodedExample(DROPPED_EMPTY)
        answer = self.answer_ids(output)
        if len(answer) > max_target_length or len(answer) >= cutoff_len:
            return EncodedExample(DROPPED_TARGET)
        budget = min(max_source_length, cutoff_len - len(answer))
        prompt = self._encode_prompt(instruction)
        status = KEPT
        if len(prompt) > budget:
            prompt = self._shortened_prompt(instruction, budget)
            if prompt is None:
                return EncodedExample(DROPPED_SOURCE)
            status = TRUNCATED
        return EncodedExample(status, prompt + answer, [IGNORE_INDEX] * len(prompt) + answer)

    def training_example(
        self, instruction: str, output: str, *, max_source_length: int, max_target_length: int, cutoff_len: int
    ) -> dict | None:
        """``{"input_ids", "labels"}`` with the prompt labelled -100, or None when the example cannot fit."""
        example = self.encode_example(
            instruction,
            output,
            max_source_length=max_source_length,
            max_target_length=max_target_length,
            cutoff_len=cutoff_len,
        )
        if example.status not in (KEPT, TRUNCATED):
            return None
        return {"input_ids": example.input_ids, "labels": example.labels}

    # ---- internals -----------------------------------------------------------------------------------------------

    def _encode_prompt(self, instruction: str) -> list[int]:
        if self.template is None:
            return self._chat_template_ids(instruction)
        elements = prompt_elements(self.template, instruction, self.system)
        ids = list(self._bos_ids)
        for element in elements:
            if isinstance(element, Token):
                ids.append(self._special_token_id(element.text))
            elif element:
                ids.extend(self.tokenizer.encode(element, add_special_tokens=False))
        return ids

    def _chat_template_ids(self, instruction: str) -> list[int]:
        messages = [{"role": "user", "content": instruction}]
        if self.system is not None:
            messages.insert(0, {"role": "system", "content": self.system})
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _shortened_prompt(self, instruction: str, max_length: int) -> list[int] | None:
        """Longest prefix of the input text whose prompt fits (binary search over characters), or None."""
        text, rebuild = input_and_rebuilder(instruction)
        shortest = self._encode_prompt(rebuild(""))
        if len(shortest) > max_length:
            return None
        low, high, best = 0, len(text) - 1, shortest  # the full text is known not to fit
        while low <= high:
            middle = (low + high) // 2
            ids = self._encode_prompt(rebuild(text[:middle]))
            if len(ids) <= max_length:
                best, low = ids, middle + 1
            else:
                high = middle - 1
        return best

    def _bos(self) -> list[int]:
        """The reference adds BOS when the tokenizer has one and adds it (``add_bos_token``, default True)."""
        bos_id = self.tokenizer.bos_token_id
        if self.template is None or bos_id is None or not getattr(self.tokenizer, "add_bos_token", True):
            return []
        return [bos_id]

    def _special_token_id(self, token: str) -> int:
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        unknown = token_id is None or (token_id == self.tokenizer.unk_token_id and token != self.tokenizer.unk_token)
        if unknown:
            raise ValueError(
                f"prompt template {self.template_name!r} needs the special token {token!r}, which this tokenizer "
                "does not have: use the template of this model's family (or the default chat template)"
            )
        return token_id

    def _eos_token_id(self) -> int:
        if self.template is not None and self.template.replace_eos:
            return self._special_token_id(self.template.stop_words[0])
        if self.tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no EOS token: the model could never learn to stop")
        return self.tokenizer.eos_token_id

    def _stop_token_ids(self) -> list[int]:
        """Tokens that end generation: our EOS, the tokenizer's EOS and the template's stop words."""
        candidates = [self.eos_token_id, self.tokenizer.eos_token_id]
        if self.template is not None:
            candidates += [self._special_token_id(word) for word in self.template.stop_words]
        return list(dict.fromkeys(i for i in candidates if i is not None))
