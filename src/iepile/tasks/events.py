"""What the three event tasks (EE, EET, EEA) share: records, checks, and event/argument ordering."""

from __future__ import annotations

from typing import Any

from iepile.records import EventRecord, RecordError
from iepile.schema import Schema, SchemaError, require_names
from iepile.tasks.base import Task, by_position, one_or_many, position_of, require_in_text, require_label, unique
from iepile.tasks.scoring import NAN, dict_items, strings, unique_tuples


class EventTask(Task):
    schema_section = "events"
    gold_fields = ("event_type",)
    annotation_key = "event"
    record_type = EventRecord
    default_split_num = 4

    def answer_key(self, item: Any) -> str:
        return item if isinstance(item, str) else item["event_type"]  # EET asks types, EE and EEA event items

    def check(self, record, schema: Schema) -> None:
        known = schema.memo("events", lambda: set(schema.type_list) | set(schema.type_role_dict))
        for i, event in enumerate(self.annotations(record)):
            require_label(event.event_type, known, f"$.event[{i}].event_type", "event type")
            if event.event_trigger:
                require_in_text(record.text, event.event_trigger, event.trigger_start, event.trigger_end,
                                f"$.event[{i}].event_trigger")
            roles = set(schema.type_role_dict.get(event.event_type, ()))
            for j, arg in enumerate(event.arguments):
                if arg.argument:
                    require_in_text(record.text, arg.argument, arg.start, arg.end, f"$.event[{i}].arguments[{j}].argument")
                    if not arg.role.strip():
                        raise RecordError("empty role", field=f"$.event[{i}].arguments[{j}].role")
                if schema.type_role_dict:
                    require_label(arg.role, roles or {""}, f"$.event[{i}].arguments[{j}].role",
                                  f"role of {event.event_type}")

    def all_labels(self, schema: Schema) -> list[str]:
        return schema.type_list or list(schema.type_role_dict)

    def positives(self, record) -> list[str]:
        return unique(event.event_type for event in self.kept_events(record))

    def kept_events(self, record) -> list:
        """Events worth a target: a trigger or at least one non-empty argument (the reference dropped the rest)."""
        return [e for e in self.annotations(record) if e.event_trigger or any(a.argument for a in e.arguments)]

    def events_of(self, record, event_type: str) -> list:
        """Events of one type, ordered by where their trigger occurs."""
        events = [e for e in self.kept_events(record) if e.event_type == event_type]
        return sorted(events, key=lambda e: position_of(record.text, e.event_trigger, e.trigger_start, e.trigger_end)
                      if e.event_trigger else (True, 0))

    def gold_roles(self, record, event_type: str) -> list[str]:
        return unique(a.role for e in self.events_of(record, event_type) for a in e.arguments if a.argument)

    def argument_map(self, record, event, roles: list[str]) -> dict:
        """``{role: value | [values] | "NAN"}`` for the asked roles; ``{}`` when none of them is filled."""
        values: dict[str, list[str]] = {}
        for arg in event.arguments:
            if arg.argument:
                values.setdefault(arg.role, []).append(arg.argument)
        if not any(role in values for role in roles):
            return {}
        return {role: one_or_many(by_position(record.text, values[role])) if role in values else "NAN"
                for role in roles}

    def schema_from_labels(self, labels):
        """Event types (a list) or event types with their roles (a mapping), every name non-empty."""
        where = f"{self.name} schema"
        if isinstance(labels, dict):
            roles = {t: require_names(r or [], f"{where}: {t}") for t, r in labels.items()}
            return Schema(type_list=require_names(list(labels), where), type_role_dict=roles)
        if not isinstance(labels, list):
            raise SchemaError(f"{where}: expected a list of event types or a mapping event type → roles")
        return Schema(type_list=require_names(labels, where), type_role_dict={t: [] for t in labels})

    # -- evaluation helpers shared by EE, EET and EEA ------------------------------------------------------------
    def asked_roles(self, groups) -> dict[str, set[str]]:
        """Roles asked per event type over a record's schema groups (only for items that list roles)."""
        roles: dict[str, set[str]] = {}
        for items in groups or []:
            for item in items:
                if isinstance(item, dict) and isinstance(item.get("arguments"), list):
                    roles.setdefault(item.get("event_type"), set()).update(item["arguments"])
        return roles

    def gold_arguments(self, event: dict, asked: set[str] | None, reference: bool) -> list[tuple[str, str]]:
        """``(role, argument)`` of a gold event: all of them for the reference; otherwise the ones a training target
        can hold (non-empty, asked, one per value)."""
        pairs = [(arg.get("role", ""), arg.get("argument", "")) for arg in event.get("arguments") or []
                 if isinstance(arg, dict)]
        if reference:
            return pairs
        return unique_tuples([(role, value) for role, value in pairs
                              if value and (asked is None or role in asked)])

    def gold_is_kept(self, event: dict) -> bool:
        """The events a training target holds: a trigger or at least one non-empty argument."""
        return bool(event.get("event_trigger")) or any(isinstance(a, dict) and a.get("argument")
                                                       for a in event.get("arguments") or [])

    def answer_arguments(self, arguments, reference: bool) -> list[tuple[str, str]]:
        return [(role, value) for role, values in dict_items(arguments) for value in strings(values, reference)]

    def trigger_of(self, trigger: str, reference: bool) -> str:
        return trigger if reference or trigger else NAN

    def has_trigger(self, trigger: str, reference: bool) -> bool:
        return reference or trigger not in ("", NAN)
