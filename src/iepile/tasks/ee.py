"""EE: events with triggers and arguments. Items ``{"event_type", "trigger": true, "arguments": [roles]}``; answers
``{type: [{"trigger", "arguments": {role: value | [values] | "NAN"}}]}``."""

from __future__ import annotations

from iepile.convert.sampling import binomial, choose_labels, order
from iepile.schema import Schema, SchemaError
from iepile.tasks.base import Context
from iepile.tasks.events import EventTask
from iepile.tasks.scoring import dict_items, list_of


class EE(EventTask):
    name = "EE"
    #: the task sentence that opens every instruction, per language (the reference's, byte for byte)
    sentences = {
        "zh": '你是专门进行事件提取的专家。请从input中抽取出符合schema定义的事件，不存在的事件返回空列表，不存在的论元返回NAN，如果论元存在多值请返回列表。请按照JSON字符串的格式回答。',
        "en": ('You are an expert in event extraction. Please extract events from the input that conform to the schema'
                ' definition. Return an empty list for events that do not exist, and return NAN for arguments that do'
                ' not exist. If an argument has multiple values, please return a list. Respond in the format of a JSON'
                ' string.'),
    }
    reference_levels = ("trigger", "argument")

    def answer_grammar(self, items: list[dict], parts):
        """``{event type: [{"trigger", "arguments": {role: string | NAN | [strings]}}]}``; arguments all or none."""
        argument = parts.span_or_spans(parts.span_or_nan)
        return parts.object([(item["event_type"], parts.listed(parts.object([
            ("trigger", parts.span_or_nan),
            ("arguments", parts.object([(role, argument) for role in item.get("arguments", [])], parts.ALL_OR_EMPTY)),
        ]), unique=False)) for item in items])

    def roles_for(self, record, event_type: str, positive: bool, ctx: Context) -> list[str]:
        """Positive types: every gold role plus sampled others; negative types: at least one sampled role."""
        all_roles = ctx.schema.type_role_dict.get(event_type, [])
        gold = self.gold_roles(record, event_type) if positive else []
        others = [r for r in all_roles if r not in gold]
        k = binomial(ctx.rng, len(all_roles), ctx.options.neg_ratio) if ctx.options.neg_ratio >= 0 else len(others)
        if not gold and ctx.options.neg_ratio != 0:
            k = max(k, 1)
        k = min(k, len(others))
        sampled = others if k == len(others) else ctx.rng.sample(others, k)
        return order(gold + sampled, ctx.rng, ctx.options.random_sort)

    def train_items(self, record, ctx: Context) -> list[dict]:
        positives = self.positives(record)
        labels = choose_labels(positives, self.all_labels(ctx.schema), ctx.rng, ctx.options, ctx.stats)
        items = [{"event_type": t, "trigger": True, "arguments": self.roles_for(record, t, t in positives, ctx)}
                 for t in labels]
        if ctx.options.random_sort:
            return order(items, ctx.rng, True)
        return sorted(items, key=lambda item: (item["event_type"], item["arguments"]))

    def items_key(self, record, options):
        # without sampling every type is asked with all its roles, whatever the record holds
        return tuple(self.positives(record)) if options.draws_nothing else None

    def schema_from_labels(self, labels):
        """EE asks for arguments, so its schema names the roles of each event type; a bare list of types (EET's
        schema) would ask for triggers and no argument at all."""
        if not isinstance(labels, dict):
            raise SchemaError('an EE schema maps each event type to its roles, e.g. {"Attack": ["attacker", '
                              '"target"]}; a list of event types is the schema of EET (triggers only)')
        return super().schema_from_labels(labels)

    def test_items(self, record, schema: Schema) -> list[dict]:
        return [{"event_type": t, "trigger": True, "arguments": sorted(schema.type_role_dict.get(t, []))}
                for t in sorted(self.all_labels(schema))]

    def render_output(self, record, items: list[dict], schema: Schema | None = None) -> dict:
        return {item["event_type"]: [
            {"trigger": event.event_trigger or "NAN",
             "arguments": self.argument_map(record, event, item["arguments"])}
            for event in self.events_of(record, item["event_type"])] for item in items}

    # -- evaluation: ("trigger", type, trigger), ("argument", (type, role), argument) and
    #    ("argument_strict", (type, role), trigger, argument): an argument counts only inside its found event -------
    def eval_levels(self) -> tuple[str, ...]:
        return ("trigger", "argument", "argument_strict")

    def gold_tuples(self, annotations: list[dict], groups=None, reference: bool = False) -> list[tuple]:
        asked = self.asked_roles(groups)
        tuples = []
        for event in annotations:
            if not reference and not self.gold_is_kept(event):
                continue
            event_type = event.get("event_type", "")
            arguments = self.gold_arguments(event, asked.get(event_type) if asked else None, reference)
            tuples.extend(self.event_tuples(event_type, event.get("event_trigger") or "", arguments, reference))
        return tuples

    def answer_tuples(self, answer, items=None, reference: bool = False) -> list[tuple]:
        tuples = []
        for event_type, events in dict_items(answer):
            for event in list_of(events, reference):
                if not isinstance(event, dict) or not isinstance(event.get("trigger", ""), str):
                    continue
                arguments = self.answer_arguments(event.get("arguments", {}), reference)
                tuples.extend(self.event_tuples(event_type, event.get("trigger", ""), arguments, reference))
        return tuples

    def event_tuples(self, event_type: str, trigger: str, arguments: list[tuple[str, str]], reference: bool):
        if self.has_trigger(trigger, reference):
            yield ("trigger", event_type, trigger)
        trigger = self.trigger_of(trigger, reference)
        for role, value in arguments:
            yield ("argument", (event_type, role), value)
            yield ("argument_strict", (event_type, role), trigger, value)
