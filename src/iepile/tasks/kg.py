"""KG: entity instances and their attributes. Records are RE-shaped (``head`` = entity, ``relation`` = attribute,
``tail`` = value, optional ``head_type``); items ``{"entity_type", "attributes": [...]}``, one entity type per item;
answers ``{entity_type: {entity: {attribute: value | [values]}}}``.

Fixed against the reference: gold attributes are always asked in training (the reference's comment promised it, its
code did not), several entity types are supported (via ``head_type``; the first type otherwise), and repeated triples
are de-duplicated.
"""

from __future__ import annotations

from iepile.records import RecordError, RelationRecord
from iepile.convert.sampling import binomial, order
from iepile.schema import Schema, SchemaError
from iepile.tasks.base import Context, Task, by_position, one_or_many, position_of, require_in_text, require_label, unique
from iepile.tasks.scoring import KG_EMPTY, dict_items, strings, unique_tuples


class KG(Task):
    name = "KG"
    #: the task sentence that opens every instruction, per language (the reference's, byte for byte)
    sentences = {
        "zh": ('你是一个图谱实体知识结构化专家。根据输入实体类型(entity type)的schema描述，从文本中抽取出相应的实体实例和其属性信息，不存在的属性不输出, 属性存在多值就返回列表，并输出为可解析的json'
                '格式。'),
        "en": ('You are an expert in structured knowledge systems for graph entities. Based on the schema description'
                ' of the input entity type, you extract the corresponding entity instances and their attribute information'
                ' from the text. Attributes that do not exist should not be output. If an attribute has multiple values,'
                ' a list should be returned. The results should be output in a parsable JSON format.'),
    }
    empty_value = dict

    def answer_key(self, item) -> str:
        return item if isinstance(item, str) else item["entity_type"]  # a type name of the user's schema, or an item

    def answer_values(self, value) -> list:
        """One ``{entity: attributes}`` per entity of the map."""
        return [{k: v} for k, v in value.items()] if isinstance(value, dict) else []

    def add_answer_value(self, answer: dict, key: str, value: dict) -> None:
        current = answer.get(key) if isinstance(answer.get(key), dict) else {}
        current.update(value)
        answer[key] = current
    schema_section = "kg"
    gold_fields = ("head", "relation", "tail")
    annotation_key = "relation"
    record_type = RelationRecord
    default_split_num = 1

    def answer_grammar(self, items: list[dict], parts):
        """``{entity type: {entity: {attribute: string | [strings]}}}`` with some of the attributes."""
        value = parts.span_or_spans()
        return parts.object([(item["entity_type"], parts.mapping(
            parts.span, parts.object([(attribute, value) for attribute in item.get("attributes", [])], parts.SUBSET)))
            for item in items])

    def dedupe_key(self, item):
        return (item.head, item.relation, item.tail)

    def all_labels(self, schema: Schema) -> list[str]:
        if not schema.type_role_dict:
            raise SchemaError("a KG schema needs line 3 (entity type → attributes)")
        return list(schema.type_role_dict)

    def type_of(self, rel, schema: Schema) -> str:
        return rel.head_type or self.all_labels(schema)[0]

    def check(self, record, schema: Schema) -> None:
        types = schema.memo("KG", lambda: set(self.all_labels(schema)))
        for i, rel in enumerate(self.annotations(record)):
            require_in_text(record.text, rel.head, rel.head_start, rel.head_end, f"$.relation[{i}].head")
            require_in_text(record.text, rel.tail, rel.tail_start, rel.tail_end, f"$.relation[{i}].tail")
            entity_type = self.type_of(rel, schema)
            require_label(entity_type, types, f"$.relation[{i}].head_type", "entity type")
            if rel.relation not in schema.type_role_dict[entity_type]:
                raise RecordError(f"attribute {rel.relation!r} is not listed for {entity_type!r} in the schema file",
                                  field=f"$.relation[{i}].relation")

    def positive_types(self, record, schema: Schema) -> list[str]:
        return unique(self.type_of(rel, schema) for rel in self.annotations(record))

    def train_items(self, record, ctx: Context) -> list[dict]:
        types = self.positive_types(record, ctx.schema) or self.all_labels(ctx.schema)[:1]
        items = []
        for entity_type in types:
            gold = unique(rel.relation for rel in self.annotations(record) if self.type_of(rel, ctx.schema) == entity_type)
            others = [a for a in ctx.schema.type_role_dict[entity_type] if a not in gold]
            k = len(others) if ctx.options.neg_ratio < 0 else binomial(ctx.rng, len(others), ctx.options.neg_ratio)
            if not gold and ctx.options.neg_ratio != 0:
                k = max(k, 1)
            sampled = others if k >= len(others) else ctx.rng.sample(others, k)
            items.append({"entity_type": entity_type,
                          "attributes": order(gold + sampled, ctx.rng, ctx.options.random_sort)})
        return order(items, ctx.rng, ctx.options.random_sort, key=lambda item: item["entity_type"])

    def test_items(self, record, schema: Schema) -> list[dict]:
        return [{"entity_type": t, "attributes": sorted(schema.type_role_dict[t])} for t in sorted(self.all_labels(schema))]

    def schema_from_labels(self, labels):
        if not isinstance(labels, dict):
            raise SchemaError("a KG schema is a mapping entity type → attributes")
        attributes = unique(a for values in labels.values() for a in values)
        return Schema(type_list=[], role_list=attributes, type_role_dict={t: list(v) for t, v in labels.items()})

    def render_output(self, record, items: list[dict], schema: Schema | None = None) -> dict:
        default_type = self.all_labels(schema)[0] if schema else None
        output = {}
        for item in items:
            rels = [rel for rel in self.annotations(record)
                    if (rel.head_type or default_type) == item["entity_type"]]
            heads = sorted(unique(rel.head for rel in rels), key=lambda head: position_of(record.text, head))
            output[item["entity_type"]] = {head: self.attributes_of(record, rels, head, item["attributes"])
                                           for head in heads}
        return output

    def attributes_of(self, record, rels, head: str, attributes: list[str]) -> dict:
        values: dict[str, list[str]] = {}
        for rel in rels:
            if rel.head == head:
                values.setdefault(rel.relation, []).append(rel.tail)
        return {a: one_or_many(by_position(record.text, values[a])) for a in attributes if a in values}

    # -- evaluation: ("attribute", attribute, entity, value) -------------------------------------------------------
    # The entity type is not compared: gold triples without ``head_type`` do not say it (like the reference's gold).
    def eval_levels(self) -> tuple[str, ...]:
        return ("attribute",)

    def gold_tuples(self, annotations: list[dict], groups=None, reference: bool = False) -> list[tuple]:
        tuples = [("attribute", rel.get("relation", ""), rel.get("head", ""), rel.get("tail", "")) for rel in annotations]
        return tuples if reference else unique_tuples(tuples)

    def answer_tuples(self, answer, items=None, reference: bool = False) -> list[tuple]:
        tuples = []
        for _entity_type, entities in dict_items(answer):
            for entity, attributes in dict_items(entities):
                for attribute, values in dict_items(attributes):
                    tuples.extend(("attribute", attribute, entity, value) for value in strings(values, reference)
                                  if value.lower() not in KG_EMPTY)
        return tuples if reference else unique_tuples(tuples)
