"""Generation backends: batched greedy answers for prompt token ids, with transformers (CPU/GPU) or vLLM (GPU).

Why the transformers backend looks like this: prompts are sorted by their tokens, so a batch holds instructions of
one dataset and schema group; their shared prefix (template, task sentence, schema) is run once and its key/value
cache copied to every row, and only the input texts are padded. Rows stop at EOS or at the end of their first JSON
object (:class:`AnswerEnd`). ``--constrain`` adds the grammar's logits processor, ``--threshold`` the list-opening
decision processor (:mod:`iepile.inference.threshold`).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from iepile.config import check_ranges, opt

_DEVICE = re.compile(r"^(cpu|mps|(cuda|xpu)(:[0-9]+)?)$")  # what torch.device accepts that iepile can run on


@dataclass
class GenerationOptions:
    """The model and decoding settings shared by ``iepile predict`` and ``iepile extract`` (written once here)."""

    model: Optional[str] = opt(None, "HF folder or .gguf; default: the default model, or the base recorded with "
                               "--adapter.", short="-m")
    adapter: Optional[str] = opt(None, "LoRA adapter folder from `iepile train`.")
    template: Optional[str] = opt(None, "Prompt template (default: the one the adapter or model was trained with, "
                                  "else the tokenizer's chat template).")
    batch_size: int = opt(8, "Prompts generated together.", short="-b", min=1)
    max_new_tokens: int = opt(256, "Answer length limit in tokens.", min=1)
    constrain: bool = opt(False, "Constrained decoding: exactly the asked keys, values of the task's shape, strings "
                          "copied from the input.")
    threshold: Optional[float] = opt(None, "Open a list (or add another item) when the model gives that side at "
                                     "least this share of probability (0-1; lower = more recall; default: greedy).")
    dtype: str = opt("auto", "auto, bf16, fp16 or fp32.")
    device: Optional[str] = opt(None, "cpu, cuda, cuda:1, ... (default: cuda if any).")
    backend: str = opt("transformers", "transformers (CPU/GPU) or vllm (GPU, pip install 'iepile[vllm]').")

    def validate(self) -> None:
        from iepile.inference.threshold import check_threshold

        check_ranges(self)
        if self.backend not in ("transformers", "vllm"):
            raise ValueError(f"--backend must be transformers or vllm, got {self.backend!r}")
        if self.device is not None and not _DEVICE.match(self.device):
            raise ValueError(f"--device must be cpu, cuda, cuda:N, mps or xpu[:N], got {self.device!r}")
        self.threshold = check_threshold(self.threshold)

    def generator_settings(self) -> dict:
        """Keyword arguments of :meth:`TransformersGenerator.load` (after the model and adapter)."""
        return dict(template=self.template, dtype=self.dtype, device=self.device, batch_size=self.batch_size,
                    max_new_tokens=self.max_new_tokens, constrain=self.constrain, threshold=self.threshold)


# -- requests and their answers ----------------------------------------------------------------------------------------

@dataclass
class Request:
    """One prompt to answer; ``task`` and ``instruction`` let constrained decoding build the answer grammar."""

    prompt_ids: list[int]
    task: Optional[str] = None
    instruction: Optional[str] = None


@dataclass
class GenerationStats:
    prompts: int = 0
    batches: int = 0
    prompt_tokens: int = 0
    new_tokens: int = 0
    fallback_scans: int = 0
    decisions: int = 0  # extract-or-stop decision points met under --threshold
    flipped: int = 0  # of those, decided against greedy
    seconds: float = 0.0


class TransformersGenerator:
    """Batched greedy generation with transformers: prompts sorted by their tokens, the batch's shared prefix run
    once, stop at EOS, a template stop word or the end of the answer's JSON object. Works on CPU and GPU."""

    def __init__(self, model, tokenizer, prompt_builder, *, batch_size: int = 8, max_new_tokens: int = 256,
                 constrain: bool = False, threshold: Optional[float] = None):
        from iepile.inference.threshold import check_threshold

        self.model, self.tokenizer, self.prompts = model, tokenizer, prompt_builder
        self.batch_size, self.max_new_tokens, self.constrain = batch_size, max_new_tokens, constrain
        self.threshold = check_threshold(threshold)
        self.stats = GenerationStats()
        self._cached_prefix: Optional[tuple[tuple[int, ...], object]] = None

    @classmethod
    def load(cls, model: Optional[str] = None, adapter: Optional[str] = None, *, template: Optional[str] = None,
             dtype: str = "auto", device: Optional[str] = None, **settings) -> "TransformersGenerator":
        from iepile.modeling.loading import load_resolved, resolve_model
        from iepile.modeling.prompts import PromptBuilder

        spec = resolve_model(model, adapter, template)
        loaded, tokenizer = load_resolved(spec, dtype=dtype, device=device)
        return cls(loaded, tokenizer, PromptBuilder(tokenizer, spec.template), **settings)

    @property
    def context_length(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 0) or 2048)

    def prompt_ids(self, instruction: str) -> list[int]:
        return self.prompts.prompt_ids(instruction)

    def generate(self, requests: Sequence[Request], on_answer: Callable[[int, str], None]) -> None:
        """Answer every request; ``on_answer(position, text)`` is called as each batch finishes (positions index
        ``requests``). Prompts are sorted by their token ids, so a batch holds instructions that share their
        template, task sentence and schema, and that shared prefix is computed once (see :meth:`generate_batch`)."""
        order = sorted(range(len(requests)), key=lambda i: requests[i].prompt_ids)
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            for position, text in zip(batch, self.generate_batch([requests[i] for i in batch])):
                on_answer(position, text)

    def generate_batch(self, requests: Sequence[Request]) -> list[str]:
        import torch

        started = time.perf_counter()
        prompts = [r.prompt_ids for r in requests]
        shared = self._shared_prefix(prompts)
        input_ids, attention_mask = self._padded_after_prefix(prompts, shared)
        processors, constraint_processor, decisions = self._processors(requests)
        budget = constraint_processor.max_new_tokens if constraint_processor else self.max_new_tokens
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=budget,
                cache=self._prefix_cache(prompts[0][:shared], len(prompts)),
                do_sample=False, num_beams=1, temperature=None, top_p=None, top_k=None,
                eos_token_id=list(self.prompts.eos_token_ids), pad_token_id=self.tokenizer.pad_token_id,
                logits_processor=processors, stopping_criteria=[AnswerEnd(self.tokenizer, len(requests))],
            )
        new_tokens = output[:, input_ids.shape[1]:].tolist()
        texts = [self._decode(tokens) for tokens in new_tokens]
        self._count(requests, new_tokens, constraint_processor, time.perf_counter() - started)
        if decisions is not None:
            self.stats.decisions += decisions.decisions
            self.stats.flipped += decisions.flipped
        return texts

    # -- the shared prefix -------------------------------------------------------------------------------------------
    # Instructions of one dataset and schema group differ only in their input text, which comes last: for IEPile's
    # instructions about three quarters of a prompt's tokens are the same in every row. Those tokens are run once
    # (batch 1), their key/value cache is copied to every row, and only the rest is padded (on its left, between
    # the prefix and the text: positions follow the attention mask, so each row still sees its tokens at their
    # own positions). The last batch's prefix cache is kept, as consecutive batches usually share it.

    MIN_SHARED_PREFIX = 16  # tokens; below this, plain left padding

    def _shared_prefix(self, prompts: list[list[int]]) -> int:
        """Tokens every prompt starts with, leaving each at least one token of its own."""
        shared = min(len(os.path.commonprefix(prompts)), min(len(p) for p in prompts) - 1)
        return shared if shared >= self.MIN_SHARED_PREFIX else 0

    def _padded_after_prefix(self, prompts: list[list[int]], shared: int):
        import torch

        width = max(len(p) for p in prompts)
        pad = self.tokenizer.pad_token_id
        rows, masks = [], []
        for p in prompts:
            gap = width - len(p)
            rows.append(p[:shared] + [pad] * gap + p[shared:])
            masks.append([1] * shared + [0] * gap + [1] * (len(p) - shared))
        device = self.model.device
        return (torch.tensor(rows, dtype=torch.long).to(device),
                torch.tensor(masks, dtype=torch.long).to(device))

    def _prefix_cache(self, prefix: list[int], rows: int):
        """A key/value cache holding ``prefix`` for each of ``rows`` rows (None for an empty prefix)."""
        import copy

        import torch
        from transformers import DynamicCache

        if not prefix:
            return None
        prefix = tuple(prefix)
        if self._cached_prefix is None or self._cached_prefix[0] != prefix:
            cache = DynamicCache(config=self.model.config)
            with torch.inference_mode():
                ids = torch.tensor([prefix], dtype=torch.long, device=self.model.device)
                self.model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
            self._cached_prefix = (prefix, cache)
        cache = copy.deepcopy(self._cached_prefix[1])
        cache.batch_repeat_interleave(rows)
        return cache

    def _processors(self, requests: Sequence[Request]):
        """The threshold's decision processor first (it only removes the losing side of a decision), then the
        grammar, which picks the best token it allows among what is left."""
        from transformers import LogitsProcessorList

        from iepile.inference.threshold import ListDecisionProcessor

        decisions = ListDecisionProcessor(self.tokenizer, self.threshold, len(requests)) \
            if self.threshold is not None else None
        processors = LogitsProcessorList([decisions] if decisions else [])
        if not self.constrain:
            return processors, None, decisions
        from iepile.inference.constrain import ConstrainedLogitsProcessor, constraints_for

        constraints = constraints_for([r.task for r in requests], [r.instruction or "" for r in requests])
        processor = ConstrainedLogitsProcessor(constraints, self.tokenizer, self.prompts.eos_token_ids,
                                               self.max_new_tokens)
        processor.max_new_tokens = max(self.max_new_tokens, processor.tokens_needed())
        processors.append(processor)
        return processors, processor, decisions

    def _decode(self, tokens: list[int]) -> str:
        """New tokens up to the first stop token, without special tokens, cut at any stop word left in the text."""
        text = self.tokenizer.decode(tokens[:self._answer_length(tokens)], skip_special_tokens=True)
        for word in self.prompts.stop_strings:
            if word and word in text:
                text = text[:text.index(word)]
        return text.strip()

    def _answer_length(self, tokens: list[int]) -> int:
        """New tokens before the first stop: EOS, or the padding generate writes after a row's :class:`AnswerEnd`."""
        stops = set(self.prompts.eos_token_ids) | {self.tokenizer.pad_token_id}
        return next((i for i, token in enumerate(tokens) if token in stops), len(tokens))

    def _count(self, requests, new_tokens, constraint_processor, seconds: float) -> None:
        self.stats.prompts += len(requests)
        self.stats.batches += 1
        self.stats.prompt_tokens += sum(len(r.prompt_ids) for r in requests)
        self.stats.new_tokens += sum(min(self._answer_length(row) + 1, len(row)) for row in new_tokens)  # + its stop
        self.stats.seconds += seconds
        if constraint_processor is not None:
            self.stats.fallback_scans += constraint_processor.fallback_scans


class AnswerEnd:
    """A stopping criterion: a row is done once its first top-level JSON object is closed. Every IEPile answer is
    one JSON object, which a fine-tuned model ends with EOS; an untrained model goes on (an explanation, a second
    answer) until the token limit, which made it the slowest system of a recipe, for text the answer parser
    ignores. Bytes before the first ``{`` are skipped; brackets inside strings do not count."""

    def __init__(self, tokenizer, rows: int):
        from iepile.inference.constrain import vocabulary

        self.token_bytes = vocabulary(tokenizer).token_bytes
        self.depth = [0] * rows
        self.in_string = [False] * rows
        self.escaped = [False] * rows
        self.done = [False] * rows

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        for row, token_id in enumerate(input_ids[:, -1].tolist()):
            if not self.done[row]:
                self._scan(row, self.token_bytes[token_id] or b"")
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)

    def _scan(self, row: int, data: bytes) -> None:
        depth, in_string, escaped = self.depth[row], self.in_string[row], self.escaped[row]
        for byte in data:
            if in_string:
                escaped, in_string = (False, True) if escaped else (byte == 0x5C, byte != 0x22)
            elif byte == 0x22 and depth:
                in_string = True
            elif byte == 0x7B or (byte == 0x5B and depth):  # { opens the answer; [ only inside it
                depth += 1
            elif byte in (0x7D, 0x5D) and depth:
                depth -= 1
                if depth == 0:
                    self.done[row] = True
                    break
        self.depth[row], self.in_string[row], self.escaped[row] = depth, in_string, escaped


class VllmGenerator:
    """GPU generation with vLLM (optional extra ``iepile[vllm]``, imported only here): same prompt token ids as the
    transformers backend, greedy, prefix caching on (all groups of one text share their prompt prefix). An adapter
    is served as a LoRA request. Constrained decoding is not available on this backend."""

    def __init__(self, model: Optional[str] = None, adapter: Optional[str] = None, *, template: Optional[str] = None,
                 max_new_tokens: int = 256, constrain: bool = False, threshold: Optional[float] = None,
                 dtype: str = "auto", **_ignored):
        if constrain or threshold is not None:
            raise ValueError("--constrain and --threshold are only available with --backend transformers")
        try:
            from vllm import LLM, SamplingParams
        except ImportError:
            raise ValueError("--backend vllm needs vLLM on a GPU machine: pip install 'iepile[vllm]'") from None
        from iepile.modeling.loading import load_tokenizer, resolve_model
        from iepile.modeling.prompts import PromptBuilder

        spec = resolve_model(model, adapter, template)
        path = str(spec.path)
        self.tokenizer = load_tokenizer(path)
        self.prompts = PromptBuilder(self.tokenizer, spec.template)
        self.llm = LLM(model=path, dtype=dtype, enable_prefix_caching=True, enable_lora=adapter is not None)
        self.lora = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, str(adapter))
        self.max_new_tokens = max_new_tokens  # the Extractor sizes its text windows with it
        self.params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens,
                                     stop_token_ids=list(self.prompts.eos_token_ids), skip_special_tokens=True)
        self.stats = GenerationStats()
        self.context_length = int(getattr(self.llm.llm_engine.model_config, "max_model_len", 4096))

    def prompt_ids(self, instruction: str) -> list[int]:
        return self.prompts.prompt_ids(instruction)

    def generate(self, requests: Sequence[Request], on_answer: Callable[[int, str], None],
                 chunk: int = 512) -> None:
        """vLLM schedules its own batches; we hand it chunks so answers still reach the journal as they come."""
        for start in range(0, len(requests), chunk):
            part = requests[start:start + chunk]
            outputs = self.llm.generate([{"prompt_token_ids": r.prompt_ids} for r in part], self.params,
                                        lora_request=self.lora, use_tqdm=False)
            for offset, output in enumerate(outputs):
                on_answer(start + offset, output.outputs[0].text.strip())
            self.stats.prompts += len(part)


def answer_instructions(generator, instructions: Sequence[str], tasks: Sequence[Optional[str]]) -> list[str]:
    """In-memory batch: answers for instructions, in order (used by :mod:`iepile.inference.extract` and the bench)."""
    requests = [Request(generator.prompt_ids(text), task, text) for text, task in zip(instructions, tasks)]
    answers: list[Optional[str]] = [None] * len(requests)

    def on_answer(position: int, text: str) -> None:
        answers[position] = text

    generator.generate(requests, on_answer)
    return answers  # type: ignore[return-value]


def load_generator(options: GenerationOptions):
    """The generator ``options`` ask for (``predict``, ``extract`` and ``serve`` all load it here)."""
    if options.backend == "vllm":
        return VllmGenerator(options.model, options.adapter, template=options.template,
                             max_new_tokens=options.max_new_tokens, constrain=options.constrain,
                             threshold=options.threshold, dtype=options.dtype)
    return TransformersGenerator.load(options.model, options.adapter, **options.generator_settings())
