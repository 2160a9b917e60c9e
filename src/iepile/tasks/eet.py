"""EET: event types and triggers. Items are event-type strings; answers ``{type: [trigger, ...]}`` (one per
mention, in text order)."""

from __future__ import annotations

from iepile.schema import Schema
from iepile.tasks.base import FlatLabelTask
from iepile.tasks.events import EventTask


class EET(FlatLabelTask, EventTask):
    name = "EET"

    def kept_events(self, record) -> list:
        return [event for event in self.annotations(record) if event.event_trigger]

    def render_output(self, record, items: list[str], schema: Schema | None = None) -> dict:
        return {t: [event.event_trigger for event in self.events_of(record, t)] for t in items}

    def schema_from_labels(self, labels):
        return EventTask.schema_from_labels(self, labels)
