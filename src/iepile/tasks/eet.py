"""EET: event types and triggers. Items are event-type strings; answers ``{type: [trigger, ...]}`` (one per
mention, in text order)."""

from __future__ import annotations

from iepile.schema import Schema
from iepile.tasks.base import FlatLabelTask
from iepile.tasks.events import EventTask
from iepile.tasks.scoring import dict_items, list_of, strings


class EET(FlatLabelTask, EventTask):
    name = "EET"
    #: the task sentence that opens every instruction, per language (the reference's, byte for byte)
    sentences = {
        "zh": '你是专门进行事件提取的专家。请从input中抽取出符合schema定义的事件类型及事件触发词，不存在的事件返回空列表。请按照JSON字符串的格式回答。',
        "en": ('You are an expert in event extraction. Please extract event types and event trigger words from the input'
                ' that conform to the schema definition. Return an empty list for non-existent events. Please respond'
                ' in the format of a JSON string.'),
    }

    def answer_grammar(self, items: list[str], parts):
        """``{event type: [trigger strings]}``."""
        return parts.object([(item, parts.listed(parts.span)) for item in items])

    def collect_schema(self, seen, declared: Schema) -> Schema:
        return Schema(list(seen.merged_type_roles(declared)))

    def kept_events(self, record) -> list:
        return [event for event in self.annotations(record) if event.event_trigger]

    def render_output(self, record, items: list[str], schema: Schema | None = None) -> dict:
        return {t: [event.event_trigger for event in self.events_of(record, t)] for t in items}

    def schema_from_labels(self, labels):
        return EventTask.schema_from_labels(self, labels)

    # -- evaluation: ("trigger", type, trigger), one per mention ------------------------------------------------
    def eval_levels(self) -> tuple[str, ...]:
        return ("trigger",)

    def gold_tuples(self, annotations: list[dict], groups=None, reference: bool = False) -> list[tuple]:
        return [("trigger", event.get("event_type", ""), event.get("event_trigger") or "") for event in annotations
                if reference or event.get("event_trigger")]

    def answer_tuples(self, answer, items=None, reference: bool = False) -> list[tuple]:
        return [("trigger", event_type, trigger) for event_type, triggers in dict_items(answer)
                for trigger in strings(list_of(triggers, reference), reference, nan_is_absent=not reference)]
