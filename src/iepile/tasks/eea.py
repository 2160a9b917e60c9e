"""EEA: arguments of given triggers. Items ``{"event_type", "trigger": [triggers], "arguments": [roles]}`` for the
record's gold event types; answers ``{type: [{role: value | [values] | "NAN"}]}``.

Fixed against the reference: test items have the same shape as training items (the reference dropped ``trigger`` at
test time), every trigger of the type is given, and gold roles are always asked.
"""

from __future__ import annotations

from iepile.convert.sampling import binomial, order
from iepile.schema import Schema
from iepile.tasks.base import Context, unique
from iepile.tasks.events import EventTask
from iepile.tasks.scoring import dict_items, list_of


class EEA(EventTask):
    name = "EEA"
    #: the task sentence that opens every instruction, per language (the reference's, byte for byte)
    sentences = {
        "zh": '你是专门进行事件论元提取的专家。请从input中抽取出符合schema定义的事件论元及论元角色，不存在的论元返回NAN或空字典，如果论元存在多值请返回列表。请按照JSON字符串的格式回答。',
        "en": ('You are an expert in event argument extraction. Please extract event arguments and their roles from'
                ' the input that conform to the schema definition, which already includes event trigger words. If an'
                ' argument does not exist, return NAN or an empty dictionary. Please respond in the format of a JSON'
                ' string.'),
    }
    reference_levels = ("event", "argument")
    extract_unsupported = "EEA needs the triggers of each event: use task EE (triggers and arguments) instead"
    test_items_use_record = True

    def answer_grammar(self, items: list[dict], parts):
        """``{event type: [{role: string | NAN | [strings]}]}`` with every role of the event."""
        argument = parts.span_or_spans(parts.span_or_nan)
        return parts.object([(item["event_type"], parts.listed(
            parts.object([(role, argument) for role in item.get("arguments", [])], parts.ALL), unique=False))
            for item in items])

    def item(self, record, event_type: str, roles: list[str]) -> dict:
        triggers = unique(e.event_trigger for e in self.events_of(record, event_type) if e.event_trigger)
        return {"event_type": event_type, "trigger": triggers, "arguments": roles}

    def train_items(self, record, ctx: Context) -> list[dict]:
        items = []
        for event_type in order(self.positives(record), ctx.rng, ctx.options.random_sort):
            gold = self.gold_roles(record, event_type)
            others = [r for r in ctx.schema.type_role_dict.get(event_type, []) if r not in gold]
            k = len(others) if ctx.options.neg_ratio < 0 else binomial(ctx.rng, len(others), ctx.options.neg_ratio)
            sampled = others if k >= len(others) else ctx.rng.sample(others, k)
            items.append(self.item(record, event_type, order(gold + sampled, ctx.rng, ctx.options.random_sort)))
        return items

    def test_items(self, record, schema: Schema) -> list[dict]:
        return [self.item(record, t, sorted(schema.type_role_dict.get(t, []) or self.gold_roles(record, t)))
                for t in sorted(self.positives(record))]

    def render_output(self, record, items: list[dict], schema: Schema | None = None) -> dict:
        output = {}
        for item in items:
            maps = (self.argument_map(record, event, item["arguments"])
                    for event in self.events_of(record, item["event_type"]))
            output[item["event_type"]] = [m for m in maps if m]
        return output

    # -- evaluation: ("argument", (type, role), argument) and ("event", type) per event with arguments -----------
    def eval_levels(self) -> tuple[str, ...]:
        return ("argument", "event")

    def gold_tuples(self, annotations: list[dict], groups=None, reference: bool = False) -> list[tuple]:
        asked = self.asked_roles(groups)
        tuples = []
        for event in annotations:
            event_type = event.get("event_type", "")
            arguments = self.gold_arguments(event, asked.get(event_type) if asked else None, reference)
            tuples.extend(self.event_tuples(event_type, arguments, reference))
        return tuples

    def answer_tuples(self, answer, items=None, reference: bool = False) -> list[tuple]:
        tuples = []
        for event_type, events in dict_items(answer):
            for event in list_of(events, reference):
                if not isinstance(event, dict):
                    continue
                if not reference and isinstance(event.get("arguments"), dict):
                    event = event["arguments"]  # the reference converter's old {"trigger", "arguments"} shape
                tuples.extend(self.event_tuples(event_type, self.answer_arguments(event, reference), reference))
        return tuples

    def event_tuples(self, event_type: str, arguments: list[tuple[str, str]], reference: bool):
        if reference or arguments:
            yield ("event", event_type)
        for role, value in arguments:
            yield ("argument", (event_type, role), value)
