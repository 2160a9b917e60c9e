"""One module per task behind :class:`iepile.tasks.base.Task`; ``get_task(name)`` is the only lookup by name."""

from __future__ import annotations

from iepile.tasks.base import Task
from iepile.tasks.ee import EE
from iepile.tasks.eea import EEA
from iepile.tasks.eet import EET
from iepile.tasks.kg import KG
from iepile.tasks.ner import NER
from iepile.tasks.re import RE
from iepile.tasks.spo import SPO

TASKS: dict[str, Task] = {task.name: task for task in (NER(), RE(), SPO(), EE(), EET(), EEA(), KG())}


def get_task(name: str) -> Task:
    try:
        return TASKS[name.upper()]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}") from None
