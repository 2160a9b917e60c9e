"""SPO: relations with subject and object types. Labels are ``subjecttype_predicate_objecttype`` strings; schema
items are ``{"subject_type", "predicate", "object_type"}``; answers are keyed by predicate.

Fixed against the reference: two items of one group that share a predicate merge their pairs instead of the later
one overwriting the earlier.
"""

from __future__ import annotations

from iepile.records import RecordError
from iepile.schema import Schema, split_spo
from iepile.tasks.re import RE


class SPO(RE):
    name = "SPO"

    def label_of(self, rel) -> str:
        return f"{rel.head_type}_{rel.relation}_{rel.tail_type}"

    def check(self, record, schema: Schema) -> None:
        for i, rel in enumerate(self.annotations(record)):
            for key in ("head_type", "tail_type"):
                if getattr(rel, key) is None:
                    raise RecordError("an SPO relation needs head_type and tail_type", field=f"$.relation[{i}].{key}")
        super().check(record, schema)

    def known_labels(self, schema: Schema) -> set[str]:
        return schema.memo("SPO", lambda: set(schema.type_list))

    def all_labels(self, schema: Schema) -> list[str]:
        return schema.type_list

    def flat_schema(self, labels: list[str]) -> Schema:
        for label in labels:
            split_spo(label)
        return Schema(type_list=labels, role_list=[split_spo(label)[1] for label in labels])

    def item_for(self, label: str) -> dict:
        subject_type, predicate, object_type = split_spo(label)
        return {"subject_type": subject_type, "predicate": predicate, "object_type": object_type}

    def render_output(self, record, items: list[dict], schema: Schema | None = None) -> dict:
        output: dict[str, list[dict]] = {}
        for item in items:
            label = f"{item['subject_type']}_{item['predicate']}_{item['object_type']}"
            output.setdefault(item["predicate"], []).extend(self.pairs(record, label))
        return output
