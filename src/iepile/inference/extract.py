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
from typing import Any, Callable, Optional, Sequence

from iepile.config import opt
from iepile.inference.generators import GenerationOptions
from iepile.text import language_of, sentence_spans, tile

NAN = "NAN"


# -- grounding -------------------------------------------------------------------------------------------------------

def fold_char(char: str) -> str:
    """One character → one character: full-width ASCII forms to half-width, ideographic space to space, other
    whitespace to space. Length-preserving, so folded positions are text positions."""
    code = ord(char)
    if 0xFF01 <= code <= 0xFF5E:
        return chr(code - 0xFEE0)
    if code == 0x3000 or char.isspace():
        return " "
    return char


def _folded(text: str) -> tuple[str, list[int]]:
    """Folded text with runs of spaces collapsed, and for each folded character its position in ``text``."""
    chars, positions = [], []
    for position, char in enumerate(text):
        folded = fold_char(char)
        if folded == " " and chars and chars[-1] == " ":
            continue
        chars.append(folded)
        positions.append(position)
    return "".join(chars), positions


def _all_occurrences(haystack: str, needle: str) -> list[int]:
    found, start = [], haystack.find(needle)
    while start >= 0:
        found.append(start)
        start = haystack.find(needle, start + 1)
    return found


def _on_word_edges(text: str, start: int, end: int) -> bool:
    """ASCII words are matched whole ("US" is not found inside "USA"); other scripts match anywhere."""
    def joined(left: int, right: int) -> bool:
        if left < 0 or right >= len(text):
            return False
        a, b = text[left], text[right]
        return a.isascii() and a.isalnum() and b.isascii() and b.isalnum()

    return not joined(start - 1, start) and not joined(end - 1, end)


@dataclass
class Grounding:
    text: str
    offsets: list[list[int]]
    match: Optional[str]  # "exact", "normalized" or None (not found: hallucinated or paraphrased)

    @property
    def ambiguous(self) -> bool:
        return len(self.offsets) > 1


class TextGrounder:
    """All occurrences of answer strings in one text; the folded text is built once per text."""

    def __init__(self, text: str):
        self.text = text
        self._folded: Optional[tuple[str, list[int]]] = None

    def ground(self, value: str) -> Grounding:
        value = value.strip()
        if not value:
            return Grounding(value, [], None)
        spans = self._spans(self.text, value, None)
        if spans:
            return Grounding(value, spans, "exact")
        if self._folded is None:
            self._folded = _folded(self.text)
        folded_value, _ = _folded(value)
        spans = self._spans(self._folded[0], folded_value.strip(), self._folded[1])
        return Grounding(value, spans, "normalized" if spans else None)

    def _spans(self, haystack: str, needle: str, positions: Optional[list[int]]) -> list[list[int]]:
        if not needle:
            return []
        starts = _all_occurrences(haystack, needle)
        whole = [s for s in starts if _on_word_edges(haystack, s, s + len(needle))]
        starts = whole or starts
        if positions is None:
            return [[s, s + len(needle)] for s in starts]
        return [[positions[s], positions[s + len(needle) - 1] + 1] for s in starts]


def answer_strings(value: Any) -> list[str]:
    """Every extracted string in an answer value (dict keys too: KG entities), without ``NAN``."""
    if isinstance(value, str):
        return [] if value == NAN or not value.strip() else [value]
    if isinstance(value, list):
        return [s for item in value for s in answer_strings(item)]
    if isinstance(value, dict):
        keys = [k for k in value if isinstance(k, str) and _is_entity_key(value)]
        return keys + [s for item in value.values() for s in answer_strings(item)]
    return []


def _is_entity_key(mapping: dict) -> bool:
    """KG maps entity → attributes: its keys are text, unlike the fixed keys of RE/EE objects."""
    return bool(mapping) and all(isinstance(v, dict) for v in mapping.values())


# -- long texts --------------------------------------------------------------------------------------------------------

def _split_long(text: str, start: int, end: int, count: Callable[[str], int], budget: int) -> list[tuple[int, int]]:
    """A sentence longer than the budget: pieces that fit, cut at a space when one is near the cut."""
    pieces = []
    while start < end:
        low, high = start + 1, end
        while low < high:  # longest prefix that fits
            middle = (low + high + 1) // 2
            if count(text[start:middle]) <= budget:
                low = middle
            else:
                high = middle - 1
        cut = low
        space = text.rfind(" ", start + (cut - start) // 2, cut)
        if cut < end and space > start:
            cut = space + 1
        pieces.append((start, cut))
        start = cut
    return pieces


def windows(text: str, count: Callable[[str], int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Windows of whole sentences of at most ``budget`` tokens; each next window repeats up to ``overlap`` tokens of
    the previous one's last sentences, so an entity on a window edge is seen whole at least once."""
    if count(text) <= budget:
        return [(0, len(text))]
    units: list[tuple[int, int]] = []
    for start, end in tile(sentence_spans(text), len(text)):
        units += _split_long(text, start, end, count, budget) if count(text[start:end]) > budget else [(start, end)]
    sizes = [count(text[s:e]) for s, e in units]
    spans, first = [], 0
    while first < len(units):
        last, used = first, sizes[first]
        while last + 1 < len(units) and used + sizes[last + 1] <= budget:
            last += 1
            used += sizes[last]
        spans.append((units[first][0], units[last][1]))
        if last + 1 >= len(units):
            break
        next_first, carried = last + 1, 0
        while next_first - 1 > first and carried + sizes[next_first - 1] <= overlap:
            next_first -= 1
            carried += sizes[next_first]
        first = next_first
    return spans


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
            from iepile.inference.generators import TransformersGenerator

            options = self.options
            self._generator = TransformersGenerator.load(options.model, options.adapter,
                                                         **options.generator_settings())
        return self._generator

    def extract(self, text: str, schema: Any, task: str = "NER", language: Optional[str] = None) -> ExtractionResult:
        return self.extract_batch([text], schema, task, language)[0]

    def extract_batch(self, texts: Sequence[str], schema: Any, task: str = "NER",
                      language: Optional[str] = None) -> list[ExtractionResult]:
        """All groups of all windows of all texts run as one batch; one merged result per text, in order."""
        from iepile.inference.generators import answer_instructions
        from iepile.tasks import get_task

        task_impl = get_task(task)
        groups, order = self._groups(task_impl, schema)
        languages = [language or language_of(text) for text in texts]
        spans = [self._windows(text, task_impl, groups, lang) for text, lang in zip(texts, languages)]
        prompts = self._prompts(task_impl, texts, languages, spans, groups)
        answers = answer_instructions(self.generator, [p.instruction for p in prompts], [task_impl.name] * len(prompts))
        return [self._merge(i, text, task_impl, languages[i], spans[i], order,
                            [(p, a) for p, a in zip(prompts, answers) if p.text_index == i])
                for i, text in enumerate(texts)]

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
    if isinstance(value, dict) and len(value) == 1 and _is_entity_key(value):
        value = next(iter(value))
    return _folded(json.dumps(value, ensure_ascii=False, sort_keys=True))[0]


def _add_item(merged: dict, key: str, value: Any, source: dict) -> None:
    identity = (key, _identity(value))
    if identity not in merged:
        merged[identity] = Item(label=key, value=value, sources=[source])
        return
    item = merged[identity]
    if source not in item.sources:
        item.sources.append(source)
    if isinstance(value, dict) and _is_entity_key(value):
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
