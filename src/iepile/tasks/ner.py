"""NER: ``{"text", "entity": [{"entity", "entity_type"}]}`` → ``{type: [entity strings]}``."""

from __future__ import annotations

from iepile.records import NERRecord
from iepile.schema import Schema
from iepile.tasks.base import FlatLabelTask, by_position, require_in_text, require_label, span_ok
from iepile.tasks.scoring import dict_items, list_of, strings, unique_tuples


class NER(FlatLabelTask):
    name = "NER"
    #: the task sentence that opens every instruction, per language (the reference's, byte for byte)
    sentences = {
        "zh": '你是专门进行实体抽取的专家。请从input中抽取出符合schema定义的实体，不存在的实体类型返回空列表。请按照JSON字符串的格式回答。',
        "en": ('You are an expert in named entity recognition. Please extract entities that match the schema definition'
                ' from the input. Return an empty list if the entity type does not exist. Please respond in the format'
                ' of a JSON string.'),
    }
    schema_section = "entities"
    gold_fields = ("entity", "entity_type")
    annotation_key = "entity"
    record_type = NERRecord
    default_split_num = 6

    def answer_grammar(self, items: list[str], parts):
        """``{type: [entity strings]}``."""
        return parts.object([(item, parts.listed(parts.span)) for item in items])

    def collect_schema(self, seen, declared: Schema) -> Schema:
        return Schema(declared.type_list + sorted(seen.entity_types))

    def dedupe_key(self, item):
        return (item.entity, item.entity_type)

    def dedupe_keys(self, items: list) -> list:
        return [(item.entity, item.entity_type) for item in items]

    def check(self, record, schema: Schema) -> None:
        known = schema.memo("NER", lambda: set(schema.type_list))
        text = record.text
        for i, ent in enumerate(record.entity or ()):
            if not span_ok(text, ent.entity, ent.start, ent.end):
                require_in_text(text, ent.entity, ent.start, ent.end, f"$.entity[{i}].entity")
            if ent.entity_type not in known:
                require_label(ent.entity_type, known, f"$.entity[{i}].entity_type", "entity type")

    def all_labels(self, schema: Schema) -> list[str]:
        return schema.type_list

    def positives(self, record) -> list[str]:
        return list(dict.fromkeys([ent.entity_type for ent in record.entity or ()]))

    def render_output(self, record, items: list[str], schema: Schema | None = None) -> dict:
        by_type: dict[str, list[str]] = {}
        for ent in record.entity or ():
            values = by_type.get(ent.entity_type)
            if values is None:
                by_type[ent.entity_type] = [ent.entity]
            else:
                values.append(ent.entity)
        text = record.text
        return {t: by_position(text, by_type[t]) if t in by_type else [] for t in items}

    # -- evaluation: ("entity", type, span) --------------------------------------------------------------------
    def eval_levels(self) -> tuple[str, ...]:
        return ("entity",)

    def gold_tuples(self, annotations: list[dict], groups=None, reference: bool = False) -> list[tuple]:
        tuples = [("entity", ent.get("entity_type", ""), ent.get("entity", "")) for ent in annotations]
        return tuples if reference else unique_tuples(tuples)

    def answer_tuples(self, answer, items=None, reference: bool = False) -> list[tuple]:
        return [("entity", label, value) for label, values in dict_items(answer)
                for value in strings(list_of(values, reference), reference, nan_is_absent=False)]
