"""RE: ``{"text", "relation": [{"head", "relation", "tail"}]}`` → ``{relation: [{"subject", "object"}]}``.

The reference's converter wrote ``head``/``tail``; the published corpus and every scorer use ``subject``/``object``.
"""

from __future__ import annotations

from iepile.records import RelationRecord
from iepile.schema import Schema
from iepile.tasks.base import FlatLabelTask, position_of, require_in_text, require_label, unique
from iepile.tasks.scoring import dict_items, list_of, unique_tuples


class RE(FlatLabelTask):
    name = "RE"
    #: the task sentence that opens every instruction, per language (the reference's, byte for byte)
    sentences = {
        "zh": '你是专门进行关系抽取的专家。请从input中抽取出符合schema定义的关系三元组，不存在的关系返回空列表。请按照JSON字符串的格式回答。',
        "en": ('You are an expert in relationship extraction. Please extract relationship triples that match the schema'
                ' definition from the input. Return an empty list for relationships that do not exist. Please respond'
                ' in the format of a JSON string.'),
    }
    schema_section = "relations"
    gold_fields = ("head", "relation", "tail")
    annotation_key = "relation"
    record_type = RelationRecord
    default_split_num = 4

    def answer_grammar(self, items: list, parts):
        """``{relation: [{"subject", "object"}]}`` (the same pair may repeat: the reference scorer counts it)."""
        pair = parts.object([("subject", parts.span), ("object", parts.span)])
        return parts.object([(key, parts.listed(pair, unique=False)) for key in self.answer_keys(items)])

    def answer_keys(self, items: list) -> list[str]:
        return list(dict.fromkeys(self.answer_key(item) for item in items))

    def collect_schema(self, seen, declared: Schema) -> Schema:
        return Schema([], declared.role_list + sorted(seen.relations))

    def dedupe_key(self, item):
        return (item.head, item.relation, item.tail)

    def label_of(self, rel) -> str:
        return rel.relation

    def known_labels(self, schema: Schema) -> set[str]:
        return schema.memo("RE", lambda: set(schema.role_list))

    def check(self, record, schema: Schema) -> None:
        known = self.known_labels(schema)
        for i, rel in enumerate(self.annotations(record)):
            require_in_text(record.text, rel.head, rel.head_start, rel.head_end, f"$.relation[{i}].head")
            require_in_text(record.text, rel.tail, rel.tail_start, rel.tail_end, f"$.relation[{i}].tail")
            require_label(self.label_of(rel), known, f"$.relation[{i}].relation", "relation")

    def all_labels(self, schema: Schema) -> list[str]:
        return schema.role_list

    def flat_schema(self, labels: list[str]) -> Schema:
        return Schema(role_list=labels)

    def positives(self, record) -> list[str]:
        return unique(self.label_of(rel) for rel in self.annotations(record))

    def pairs(self, record, label: str) -> list[dict]:
        """``{"subject", "object"}`` pairs of one label, ordered by where head and tail first occur."""
        rels = [rel for rel in self.annotations(record) if self.label_of(rel) == label]
        rels.sort(key=lambda rel: (position_of(record.text, rel.head, rel.head_start, rel.head_end),
                                   position_of(record.text, rel.tail, rel.tail_start, rel.tail_end)))
        return [{"subject": rel.head, "object": rel.tail} for rel in rels]

    def render_output(self, record, items: list[str], schema: Schema | None = None) -> dict:
        return {label: self.pairs(record, label) for label in items}

    # -- evaluation: ("relation", relation, subject, object) -----------------------------------------------------
    def eval_levels(self) -> tuple[str, ...]:
        return ("relation",)

    def gold_tuples(self, annotations: list[dict], groups=None, reference: bool = False) -> list[tuple]:
        tuples = [("relation", rel.get("relation", ""), rel.get("head", ""), rel.get("tail", "")) for rel in annotations]
        return tuples if reference else unique_tuples(tuples)

    def answer_tuples(self, answer, items=None, reference: bool = False) -> list[tuple]:
        return [("relation", label, subject, obj) for label, pairs in dict_items(answer)
                for subject, obj in self.answer_pairs(pairs, reference)]

    def answer_pairs(self, pairs, reference: bool) -> list[tuple[str, str]]:
        """``(subject, object)`` of each pair object. Like the reference a missing key reads as ``""``; otherwise
        the reference converter's ``head``/``tail`` keys are read too, and an incomplete pair is no prediction."""
        found = []
        for pair in list_of(pairs, reference):
            if not isinstance(pair, dict):
                continue
            subject = pair.get("subject", "" if reference else pair.get("head"))
            obj = pair.get("object", "" if reference else pair.get("tail"))
            if isinstance(subject, str) and isinstance(obj, str):
                found.append((subject, obj))
        return found
