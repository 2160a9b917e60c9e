"""``iepile extract`` and ``iepile.Extractor``: raw text + a schema → one merged result per text, with offsets.

What happens to a text:

1. The schema becomes the task's schema items, split into groups of ``split_num`` (the task's default, as in
   training), so each prompt looks like the ones the model was trained on.
2. A text too long for the model is split into windows at sentence boundaries, with overlap; the result says so.
   Nothing is ever cut silently (the reference and GLiNER truncate).
3. Every group of every window of every text goes to the generator as ONE batch (the generator sorts and batches it).
4. Answers are parsed leniently, keys that were not asked are dropped, and the groups' and windows' answers are
   merged into one answer per text, de-duplicated, each item saying which window and group produced it.
5. Every extracted string is grounded to character offsets in the whole text: all occurrences, flagged when
   ambiguous; matched exactly first, then after folding full-width forms and whitespace (Chinese text often mixes
   ``，`` and ``,``, ``（`` and ``(``), with ASCII words matched on word boundaries.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Sequence

from iepile.config import opt
from iepile.inference.generators import GenerationOptions
from iepile.inference.grounding import NAN, TextGrounder, answer_strings, folded, is_entity_key, windows
from iepile.text import language_of


# -- results ---------------------------------------------------------------------------------------------------------

@dataclass
class Item:
    """One extracted answer item (an entity, a triple, an event, a KG entity) with where it came from."""

    label: str
    value: Any
    spans: list[dict] = field(default_factory=list)
    ambiguous: bool = False
    grounded: bool = True
    sources: list[dict] = field(default_factory=list)


@dataclass
class ExtractionResult:
    text: str
    task: str
    language: str
    answer: dict
    items: list[Item]
    windows: list[list[int]]
    split: bool
    failures: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# -- the extractor ---------------------------------------------------------------------------------------------------

@dataclass
class _Prompt:
    text_index: int
    window: int
    group: int
    keys: list[str]
    instruction: str


@dataclass
class ExtractionPlan:
    """A batch of texts ready to answer: their prompts and how to merge the answers back into one result a text."""

    task: Any
    texts: list[str]
    languages: list[str]
    spans: list[list[tuple[int, int]]]
    order: list[str]
    prompts: list[_Prompt]

    @property
    def instructions(self) -> list[str]:
        return [p.instruction for p in self.prompts]

    @property
    def tasks(self) -> list[str]:
        return [self.task.name] * len(self.prompts)


@dataclass
class ExtractOptions(GenerationOptions):
    """Every setting of ``iepile extract`` and :class:`Extractor` besides the texts and the schema."""

    split_num: Optional[int] = opt(None, "Schema items per prompt (task default).")
    window_tokens: Optional[int] = opt(1024, "Longest text window in tokens; longer texts are split at sentence "
                                       "boundaries with overlap.")
    window_overlap: Optional[int] = opt(None, "Tokens shared by consecutive windows (default: an eighth of a "
                                        "window).")


class Extractor:
    """Schema-based extraction from raw text with any iepile model.

    >>> extractor = Extractor()                                   # the default model; or model=..., adapter=...
    >>> extractor.extract("Alice works at ACME in Paris.", ["person", "organization"], task="NER").answer

    Settings are the fields of :class:`ExtractOptions` (``Extractor(adapter=..., constrain=True, threshold=0.3)``);
    ``generator`` reuses a loaded generator.
    """

    def __init__(self, model: Optional[str] = None, adapter: Optional[str] = None, *, generator=None,
                 options: Optional[ExtractOptions] = None, **settings):
        self.options = options or ExtractOptions(model=model, adapter=adapter, **settings)
        self.options.validate()
        self._generator = generator

    @property
    def generator(self):
        if self._generator is None:
            from iepile.inference.generators import load_generator

            self._generator = load_generator(self.options)
        return self._generator

    def extract(self, text: str, schema: Any, task: str = "NER", language: Optional[str] = None) -> ExtractionResult:
        return self.extract_batch([text], schema, task, language)[0]

    def extract_batch(self, texts: Sequence[str], schema: Any, task: str = "NER",
                      language: Optional[str] = None) -> list[ExtractionResult]:
        """All groups of all windows of all texts run as one batch; one merged result per text, in order."""
        from iepile.inference.generators import answer_instructions

        plan = self.plan(texts, schema, task, language)
        return self.finish(plan, answer_instructions(self.generator, plan.instructions, plan.tasks))

    def plan(self, texts: Sequence[str], schema: Any, task: str = "NER",
             language: Optional[str] = None) -> "ExtractionPlan":
        """The prompts of a batch of texts (every group of every window) and what merging their answers needs;
        ``iepile serve`` answers the plans of several requests in one generation batch."""
        from iepile.tasks import get_task

        task_impl = get_task(task)
        groups, order = self._groups(task_impl, schema)
        languages = [language or language_of(text) for text in texts]
        spans = [self._windows(text, task_impl, groups, lang) for text, lang in zip(texts, languages)]
        prompts = self._prompts(task_impl, texts, languages, spans, groups)
        return ExtractionPlan(task_impl, list(texts), languages, spans, order, prompts)

    def finish(self, plan: "ExtractionPlan", answers: Sequence[str]) -> list[ExtractionResult]:
        """One merged result per text of ``plan`` from the answers to its instructions (in their order)."""
        if len(answers) != len(plan.prompts):
            raise ValueError(f"{len(answers)} answers for {len(plan.prompts)} prompts")
        return [self._merge(i, text, plan.task, plan.languages[i], plan.spans[i], plan.order,
                            [(p, a) for p, a in zip(plan.prompts, answers) if p.text_index == i])
                for i, text in enumerate(plan.texts)]

    # -- schema groups -------------------------------------------------------------------------------------------
    def _groups(self, task, schema: Any) -> tuple[list[list], list[str]]:
        """Schema → groups of items, and the answer keys in the user's order."""
        from iepile.convert.sampling import chunk
        from iepile.schema import Schema

        schema_obj = schema if isinstance(schema, Schema) else task.schema_from_labels(schema)
        if task.extract_unsupported:
            raise ValueError(task.extract_unsupported)
        items = task.test_items(task.record_type(text=""), schema_obj)
        if not items:
            raise ValueError("the schema has no labels")
        groups = chunk(items, self.options.split_num or task.default_split_num)
        keys = list(dict.fromkeys(task.answer_key(i) for i in items))
        if isinstance(schema, (list, dict)):
            item_for = getattr(task, "item_for", lambda label: label)
            asked = [task.answer_key(item_for(label)) for label in schema]
            keys = [k for k in dict.fromkeys(asked) if k in keys] + [k for k in keys if k not in asked]
        return groups, keys

    # -- windows -------------------------------------------------------------------------------------------------
    def _windows(self, text: str, task, groups: list[list], language: str) -> list[tuple[int, int]]:
        from iepile.instructions import build_instruction

        generator = self.generator
        tokenizer = generator.tokenizer
        overhead = max(len(generator.prompt_ids(build_instruction(task.name, language, g, ""))) for g in groups)
        fit = generator.context_length - generator.max_new_tokens - overhead
        window = self.options.window_tokens
        budget = min(fit, window) if window else fit
        budget = int(budget * 0.95)  # the JSON-escaped text inside the prompt can tokenise slightly longer
        if budget < 8:
            raise ValueError(f"the schema groups leave no room for text in the model's {generator.context_length} "
                             "tokens: use a smaller split_num or max_new_tokens")
        overlap = self.options.window_overlap if self.options.window_overlap is not None else budget // 8

        def count(piece: str) -> int:
            return len(tokenizer.encode(json.dumps(piece, ensure_ascii=False)[1:-1], add_special_tokens=False))

        return windows(text, count, budget, overlap)

    def _prompts(self, task, texts, languages, spans, groups) -> list[_Prompt]:
        from iepile.instructions import build_instruction

        prompts = []
        for i, text in enumerate(texts):
            for w, (start, end) in enumerate(spans[i]):
                for g, group in enumerate(groups):
                    keys = list(dict.fromkeys(task.answer_key(item) for item in group))
                    prompts.append(_Prompt(i, w, g, keys,
                                           build_instruction(task.name, languages[i], group, text[start:end])))
        return prompts

    # -- merging -------------------------------------------------------------------------------------------------
    def _merge(self, index: int, text: str, task, language: str, spans: list[tuple[int, int]], order: list[str],
               answered: list[tuple[_Prompt, str]]) -> ExtractionResult:
        from iepile.inference.answers import parse_answer

        merged: dict[tuple[str, str], Item] = {}
        failures = []
        for prompt, output in answered:
            parsed = parse_answer(output)
            source = {"window": prompt.window, "group": prompt.group}
            if parsed.value is None:
                failures.append({**source, "status": parsed.status, "output": output})
                continue
            unasked = [k for k in parsed.value if k not in prompt.keys]
            if unasked:
                failures.append({**source, "status": "unasked_keys", "keys": unasked})
            for key in prompt.keys:
                for value in task.answer_values(parsed.value.get(key)):
                    _add_item(merged, key, value, source)
        grounder = TextGrounder(text)
        items = list(merged.values())
        for item in items:
            _ground(item, grounder)
        items.sort(key=lambda item: (order.index(item.label) if item.label in order else len(order),
                                     _first_offset(item)))
        return ExtractionResult(text=text, task=task.name, language=language, answer=_rebuild(items, order, task),
                                items=items, windows=[list(s) for s in spans], split=len(spans) > 1,
                                failures=failures)


def _identity(value: Any) -> str:
    """Items equal after folding (width, spaces, surrounding blanks) are one item; KG entities by their name."""
    if isinstance(value, dict) and len(value) == 1 and is_entity_key(value):
        value = next(iter(value))
    return folded(json.dumps(value, ensure_ascii=False, sort_keys=True))[0]


def _add_item(merged: dict, key: str, value: Any, source: dict) -> None:
    identity = (key, _identity(value))
    if identity not in merged:
        merged[identity] = Item(label=key, value=value, sources=[source])
        return
    item = merged[identity]
    if source not in item.sources:
        item.sources.append(source)
    if isinstance(value, dict) and is_entity_key(value):
        item.value = _deep_merge(item.value, value)


def _deep_merge(old: Any, new: Any) -> Any:
    """KG entities seen in several windows: attributes united; differing values become a list."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = dict(old)
        for k, v in new.items():
            out[k] = _deep_merge(out[k], v) if k in out else v
        return out
    if old == new or new == NAN:
        return old
    if old == NAN:
        return new
    values = (old if isinstance(old, list) else [old]) + (new if isinstance(new, list) else [new])
    unique = dict.fromkeys(json.dumps(v, ensure_ascii=False) for v in values)
    return [json.loads(v) for v in unique]


def _ground(item: Item, grounder: TextGrounder) -> None:
    groundings = [grounder.ground(s) for s in dict.fromkeys(answer_strings(item.value))]
    item.spans = [asdict(g) for g in groundings]
    item.ambiguous = any(g.ambiguous for g in groundings)
    item.grounded = all(g.offsets for g in groundings)


def _first_offset(item: Item) -> int:
    """Items of one key are listed in text order; ungrounded ones last."""
    starts = [span["offsets"][0][0] for span in item.spans if span["offsets"]]
    return min(starts) if starts else 1 << 62


def _rebuild(items: list[Item], order: list[str], task) -> dict:
    """The merged answer in the task's shape: every asked key, in schema order."""
    answer: dict[str, Any] = {key: task.empty_value() for key in order}
    for item in items:
        task.add_answer_value(answer, item.label, item.value)
    return answer
