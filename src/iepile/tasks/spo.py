"""SPO: relations with subject and object types. Labels are ``subjecttype_predicate_objecttype`` strings; schema
items are ``{"subject_type", "predicate", "object_type"}``; answers are keyed by predicate.

Fixed against the reference: two items of one group that share a predicate merge their pairs instead of the later
one overwriting the earlier.
"""

from __future__ import annotations

from iepile.records import RecordError
from iepile.schema import Schema, join_spo, spo_item_label, split_spo
from iepile.tasks.re import RE
from iepile.tasks.scoring import dict_items, unique_tuples


class SPO(RE):
    name = "SPO"
    schema_section = "spo"

    def answer_key(self, item: dict) -> str:
        """Answers are keyed by predicate (several subject/object type pairs may share one)."""
        return item["predicate"]

    def collect_schema(self, seen, declared: Schema) -> Schema:
        return Schema(declared.type_list + sorted(seen.spo), declared.role_list + sorted(seen.relations))

    def hard_negative_compatible(self, label: str, other: str) -> bool:
        """A hard negative shares the subject or the object type: a different predicate over the same kind of
        entities is what a model confuses."""
        try:
            (sa, _, oa), (sb, _, ob) = split_spo(label), split_spo(other)
        except ValueError:
            return True
        return sa == sb or oa == ob

    def label_of(self, rel) -> str:
        return join_spo(rel.head_type, rel.relation, rel.tail_type)

    def check(self, record, schema: Schema) -> None:
        for i, rel in enumerate(self.annotations(record)):
            for key in ("head_type", "tail_type"):
                if not (getattr(rel, key) or "").strip():
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
            label = spo_item_label(item)
            output.setdefault(item["predicate"], []).extend(self.pairs(record, label))
        return output

    # -- evaluation: ("triple", "subjecttype_predicate_objecttype", subject, object) -------------------------------
    # Answers are keyed by predicate only; the types come from the schema item asked in that group. When one group
    # asks several items with the same predicate their types cannot be told apart, and both sides score by predicate.
    def eval_levels(self) -> tuple[str, ...]:
        return ("triple",)

    def gold_tuples(self, annotations: list[dict], groups=None, reference: bool = False) -> list[tuple]:
        ambiguous = self.ambiguous_signatures(groups or [])
        tuples = []
        for rel in annotations:
            predicate = rel.get("relation", "")
            signature = join_spo(rel.get("head_type"), predicate, rel.get("tail_type"))
            label = predicate if signature in ambiguous else signature
            tuples.append(("triple", label, rel.get("head", ""), rel.get("tail", "")))
        return tuples if reference else unique_tuples(tuples)

    def answer_tuples(self, answer, items=None, reference: bool = False) -> list[tuple]:
        signatures = self.signatures_by_predicate(items or [])
        tuples = []
        for predicate, pairs in dict_items(answer):
            found = signatures.get(predicate, [])
            label = found[0] if len(found) == 1 else predicate
            tuples.extend(("triple", label, subject, obj) for subject, obj in self.answer_pairs(pairs, reference))
        return tuples

    def signatures_by_predicate(self, items: list) -> dict[str, list[str]]:
        by_predicate: dict[str, list[str]] = {}
        for item in items:
            if isinstance(item, dict) and "predicate" in item:
                signature = spo_item_label(item)
                by_predicate.setdefault(item["predicate"], []).append(signature)
        return by_predicate

    def ambiguous_signatures(self, groups: list[list]) -> set[str]:
        """Signatures asked in a group together with another signature of the same predicate."""
        ambiguous = set()
        for items in groups:
            for signatures in self.signatures_by_predicate(items).values():
                if len(signatures) > 1:
                    ambiguous.update(signatures)
        return ambiguous
