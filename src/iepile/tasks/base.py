"""The one interface every IE task implements, so that convert, predict, extract and eval never switch on task names.

A task answers a few questions about its records and schemas:

* which labels a record contains (``positives``) and what the full label set of a schema is (``all_labels``);
* which schema items to ask in training (``train_items``: negatives sampled) and in testing (``test_items``: all);
* how to render the gold answer for a group of items (``render_output``: the training target) and the grammar
  constrained decoding keeps an answer to (``answer_grammar``);
* how to check a record against its text and schema (``check``), and which duplicates to drop (``dedupe_key``);
* how to turn gold annotations and model answers into comparable tuples (``gold_tuples`` / ``answer_tuples``),
  used by the evaluator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Optional

from iepile.records import RecordError, find_span
from iepile.convert.sampling import SamplingOptions, SamplingStats, choose_labels, order
from iepile.schema import Schema, SchemaError, join_spo, require_names, spo_item_label
from iepile.tasks.scoring import NAN


@dataclass
class LabelsSeen:
    """The labels of raw records, collected while a dataset is imported (see :meth:`Task.collect_schema`)."""

    entity_types: set = field(default_factory=set)
    relations: set = field(default_factory=set)
    spo: set = field(default_factory=set)  # subjecttype_predicate_objecttype signatures
    event_roles: dict = field(default_factory=dict)  # event type → set of roles

    def add(self, rec: dict) -> None:
        for item in rec.get("entity") or ():
            self.entity_types.add(item["entity_type"])
        for item in rec.get("relation") or ():
            self.relations.add(item["relation"])
            self.spo.add(join_spo(item.get("head_type"), item["relation"], item.get("tail_type")))
        for item in rec.get("event") or ():
            roles = self.event_roles.setdefault(item["event_type"], set())
            roles.update(arg["role"] for arg in item.get("arguments") or ())

    def merged_type_roles(self, declared: Schema) -> dict[str, list[str]]:
        """Declared event types and roles first (file order), then the ones seen (sorted)."""
        type_roles = {t: list(r) for t, r in declared.type_role_dict.items()}
        for event_type in sorted(self.event_roles):
            known = type_roles.setdefault(event_type, [])
            known += sorted(r for r in self.event_roles[event_type] if r not in known)
        return type_roles


@dataclass
class Context:
    """What converting one record needs besides the record: its schema, options, generator and counters."""

    schema: Schema
    options: SamplingOptions
    rng: random.Random
    stats: SamplingStats


class Task:
    name: ClassVar[str]
    sentences: ClassVar[dict[str, str]]  # language → the sentence opening the task's instructions
    annotation_key: ClassVar[str]
    record_type: ClassVar[type]
    default_split_num: ClassVar[int]

    # -- records -----------------------------------------------------------------------------------------------
    def annotations(self, record) -> list:
        return getattr(record, self.annotation_key) or []

    def dedupe_key(self, item) -> Optional[tuple]:
        """Key under which repeated annotations are dropped (first kept); ``None`` keeps every item."""
        return None

    def dedupe_keys(self, items: list) -> list:
        """``dedupe_key`` of every item (one call per record, not per item, on the converter's hot path)."""
        return list(map(self.dedupe_key, items))

    def check(self, record, schema: Schema) -> None:
        """Raise :class:`RecordError` (with the field path) for annotation strings missing from the text or labels
        missing from the schema."""

    # -- schema ------------------------------------------------------------------------------------------------
    def all_labels(self, schema: Schema) -> list[str]:
        raise NotImplementedError

    def positives(self, record) -> list[str]:
        """Labels the record contains (for flat tasks: the schema labels to always ask)."""
        raise NotImplementedError

    def train_items(self, record, ctx: Context) -> list[Any]:
        raise NotImplementedError

    def test_items(self, record, schema: Schema) -> list[Any]:
        raise NotImplementedError

    def items_key(self, record, options: SamplingOptions) -> Optional[tuple]:
        """A key such that records with equal keys get equal training items (so the converter computes them once
        per key), or ``None`` when the items must be computed for each record."""
        return None

    #: whether ``test_items`` looks at the record (EEA asks about the record's own triggers) or only at the schema
    test_items_use_record: ClassVar[bool] = False

    #: the section of a friendly schema file that holds this task's labels
    schema_section: ClassVar[str]

    def require_schema(self, schema: Schema, path: str) -> None:
        """A schema file without this task's labels (say only another task's section) would give 0 test
        instructions, or training instructions asking only each record's own labels with none checked: refused."""
        if schema.sections is not None and self.schema_section not in schema.sections:
            held = ", ".join(schema.sections) or "no section"
            raise SchemaError(f"{path}: no '{self.schema_section}' section, which {self.name} needs (the file has "
                              f"{held})")
        try:
            labels = self.all_labels(schema)
        except SchemaError as err:
            raise SchemaError(f"{path}: {err}") from None
        if not labels:
            raise SchemaError(f"{path}: the schema holds no {self.name} labels")

    def schema_from_labels(self, labels: Any) -> Schema:
        """A schema given inline: a list of labels (flat tasks) or a mapping type → roles/attributes."""
        raise NotImplementedError

    def collect_schema(self, seen: LabelsSeen, declared: Schema) -> Schema:
        """The schema of imported records: the declared labels, then the ones seen (default: types with roles)."""
        type_roles = seen.merged_type_roles(declared)
        return Schema(list(type_roles), [r for roles in type_roles.values() for r in roles], type_roles)

    # -- targets -----------------------------------------------------------------------------------------------
    def render_output(self, record, items: list[Any], schema: Optional[Schema] = None) -> dict:
        raise NotImplementedError

    #: why ``iepile extract`` cannot ask this task from a schema alone (None: it can)
    extract_unsupported: ClassVar[Optional[str]] = None
    #: the answer value of a key with nothing extracted (a list; KG: a map of entities)
    empty_value: ClassVar[type] = list

    def answer_key(self, item: Any) -> str:
        """The key under which the answer to a schema item appears."""
        return item

    def nested_keys(self, item: Any) -> Optional[list]:
        """The roles or attributes a schema item asks for (None: the item does not restrict nested keys)."""
        nested = item.get("arguments", item.get("attributes")) if isinstance(item, dict) else None
        return nested if isinstance(nested, list) else None

    #: the levels the reference scorer reports as event_* and argument_* (None: one P/R/F1 of the main level)
    reference_levels: ClassVar[Optional[tuple[str, str]]] = None

    def answer_values(self, value: Any) -> list:
        """A key's answer value → its items (empty strings and NAN dropped)."""
        if not isinstance(value, list):
            return []
        return [v for v in value if v not in ("", None, NAN) and not (isinstance(v, str) and not v.strip())]

    def add_answer_value(self, answer: dict, key: str, value: Any) -> None:
        """Put one item back under its key (the inverse of :meth:`answer_values`)."""
        answer.setdefault(key, []).append(value)

    def hard_negative_compatible(self, label: str, other: str) -> bool:
        """Whether ``other`` may be mined as a hard negative of ``label`` (``mine-negatives``)."""
        return True

    def answer_grammar(self, items: list[Any], parts) -> Any:
        """The constrained-decoding grammar of an answer to ``items``, built from ``parts``
        (:class:`iepile.inference.constrain.AnswerParts`): the same shape :meth:`render_output` writes."""
        raise NotImplementedError

    # -- evaluation --------------------------------------------------------------------------------------------
    #: the string fields every gold annotation of the task has (what ``gold_tuples`` reads)
    gold_fields: ClassVar[tuple[str, ...]] = ()

    def gold_problem(self, annotation: Any) -> Optional[str]:
        """Why a gold annotation cannot be scored as this task, or None: a missing field would be read as "" and
        invent a tuple (``eval --task RE`` on NER lines gave ``("", "", "")`` relations)."""
        if not isinstance(annotation, dict):
            return "not an object"
        missing = [name for name in self.gold_fields if not isinstance(annotation.get(name), str)]
        if missing:
            return (f"no {', '.join(map(repr, missing))} string (a {self.name} annotation has "
                    f"{', '.join(self.gold_fields)})")
        return None

    def gold_tuples(self, annotations: list[dict]) -> list[tuple]:
        raise NotImplementedError

    def answer_tuples(self, answer: Any) -> list[tuple]:
        raise NotImplementedError


class FlatLabelTask(Task):
    """Tasks whose schema items are one label each (NER, RE, SPO, EET): sample labels, order them, map to items."""

    def item_for(self, label: str) -> Any:
        return label

    def train_items(self, record, ctx: Context) -> list[Any]:
        labels = choose_labels(self.positives(record), self.all_labels(ctx.schema), ctx.rng, ctx.options, ctx.stats)
        return [self.item_for(label) for label in order(labels, ctx.rng, ctx.options.random_sort)]

    def test_items(self, record, schema: Schema) -> list[Any]:
        return [self.item_for(label) for label in sorted(self.all_labels(schema))]

    def items_key(self, record, options: SamplingOptions) -> Optional[tuple]:
        return tuple(self.positives(record)) if options.draws_nothing else None

    def schema_from_labels(self, labels: Any) -> Schema:
        if not isinstance(labels, list):
            raise SchemaError(f"a {self.name} schema is a list of label strings")
        return self.flat_schema(require_names(labels, f"{self.name} schema"))

    def flat_schema(self, labels: list[str]) -> Schema:
        return Schema(type_list=labels)


def unique(items: Iterable) -> list:
    return list(dict.fromkeys(items))


def by_position(text: str, values: list[str]) -> list[str]:
    """De-duplicated values sorted by first occurrence in the text (stable; values not found sort last)."""
    if len(values) == 1:
        return list(values)
    distinct = unique(values)
    if len(distinct) == 1:
        return distinct
    find, not_found = text.find, len(text) + 1
    return sorted(distinct, key=lambda value: find(value) % not_found)  # -1 (absent) → after every real position


def position_of(text: str, value: str, start: Optional[int] = None, end: Optional[int] = None) -> tuple:
    """Sort key: first occurrence (or the given offset); not found sorts last."""
    position = find_span(text, value, start, end)
    return (position < 0, position)


def one_or_many(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


def span_ok(text: str, value: str, start: Optional[int], end: Optional[int]) -> bool:
    """The fast test behind :func:`require_in_text` (called only when this says no, to build the message)."""
    if not value.strip():
        return False
    if start is None and end is None:
        return value in text
    return start is not None and end is not None and 0 <= start <= end <= len(text) and text[start:end] == value


def require_in_text(text: str, value: str, start: Optional[int], end: Optional[int], field: str) -> None:
    """An annotated string must occur in the text, at its offsets when offsets are given. An empty string "occurs"
    everywhere, and would become the target ``{"person": [""]}``: refused."""
    if not value.strip():
        raise RecordError("empty string (an annotation needs the text it marks)", field=field)
    if start is not None or end is not None:
        if start is None or end is None or not 0 <= start <= end <= len(text):
            raise RecordError(f"offsets [{start}, {end}) are not a valid span of the text", field=field)
        if text[start:end] != value:
            raise RecordError(f"text at offsets [{start}, {end}) is {text[start:end]!r}, not {value!r}", field=field)
    elif value not in text:
        raise RecordError(f"{value!r} does not occur in the text", field=field)


def require_label(label: str, known: set[str], field: str, what: str) -> None:
    """A label must be named, and be in the schema file when there is one (an empty label would be asked in every
    prompt)."""
    if not label.strip():
        raise RecordError(f"empty {what}", field=field)
    if known and label not in known:
        raise RecordError(f"{what} {label!r} is not in the schema file", field=field)


def item_label(item: Any) -> str:
    """The label a schema item asks for (for statistics): the string itself, or its type."""
    if isinstance(item, str):
        return item
    if "predicate" in item:
        return spo_item_label(item)
    return item.get("event_type") or item.get("entity_type")
