"""Label Studio JSON exports: a list of tasks (or one task object), each ``{"data": {"text": ...}, "annotations":
[{"result": [...]}], "predictions": [{"result": [...], "model_version", "score"}]}``. JSON-MIN exports (``{"text",
"label": [{start, end, text, labels}]}``) are read too.

``labels`` results become entities (``--task NER``, default); ``relation`` results (``from_id`` → ``to_id``)
become relations between them (``--task RE``), typed by their ``labels`` (a relation without one is typed
``relation``, noted). Label Studio has no event object: events (``--task EE``, ``EET``, ``EEA``) are the regions of
a Labels control named ``trigger`` (labelled with the event type), each with its arguments as the regions its
``relation`` results point to (the role is the relation's label, else the argument region's label), as in the
labelling config of ``EVENT_CONFIG``; ``iepile extract --format label-studio`` writes them so. Which annotation of a task: ``--annotation first`` (default), ``latest`` (by ``updated_at``,
``created_at``, then ``id``) or ``all`` (their results together, a span given twice kept once). Cancelled
annotations are skipped (counted); a task without annotations uses its first prediction (noted). Offsets are checked
against the text: a region whose ``text`` is not at its ``start``/``end`` is an error naming the task and region.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Optional

from iepile.data.formats.base import (ReadOptions, ReadStats, argument, entity, event, iter_json_items, record,
                                      relation, where)
from iepile.records import RecordError

TASKS = ("NER", "RE", "EE", "EET", "EEA")
TRIGGER_CONTROL = "trigger"  # the from_name of trigger regions
EVENT_CONFIG = """<View>
  <Labels name="trigger" toName="text"><Label value="EVENT TYPE"/></Labels>
  <Labels name="label" toName="text"><Label value="ROLE"/></Labels>
  <Relations><Relation value="ROLE"/></Relations>
  <Text name="text" value="$text"/>
</View>"""


def read(path: Path, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    for line, value in iter_json_items(path, stats):
        for task in value if isinstance(value, list) else [value]:
            try:
                yield _record(task, path, line, opts, stats)
            except RecordError as err:
                stats.reject(err)


def _text(task: Any, path: Path, line: int) -> str:
    if isinstance(task, dict) and isinstance(task.get("data"), dict):
        text = next((v for v in task["data"].values() if isinstance(v, str)), None)
    else:
        text = task.get("text") if isinstance(task, dict) else None
    if not isinstance(text, str):
        raise RecordError("a task needs data.text (or text in JSON-MIN)", path=str(path), line=line, field="data")
    return text


def _results(task: dict, path: Path, line: int, opts: ReadOptions, stats: ReadStats) -> list[dict]:
    if "label" in task and "data" not in task:  # JSON-MIN
        return [{"type": "labels", "id": str(i), "value": v} for i, v in enumerate(task.get("label") or [])]
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict)]
    cancelled = [a for a in annotations if a.get("was_cancelled")]
    if cancelled:
        stats.skip("cancelled annotation", where(path, line), len(cancelled))
    annotations = [a for a in annotations if not a.get("was_cancelled")]
    if not annotations:
        predictions = [p for p in task.get("predictions") or [] if isinstance(p, dict)]
        if predictions:
            stats.note("task without annotations: its first prediction is used", where(path, line))
            return predictions[0].get("result") or []
        return []
    if opts.annotation == "latest":
        annotations = [max(annotations, key=lambda a: (str(a.get("updated_at") or ""), str(a.get("created_at") or
                                                                                           ""), str(a.get("id"))))]
    elif opts.annotation == "first":
        if len(annotations) > 1:
            stats.note("task with several annotations: the first is used (--annotation)", where(path, line))
        annotations = annotations[:1]
    return [r for a in annotations for r in a.get("result") or []]


def _record(task: Any, path: Path, line: int, opts: ReadOptions, stats: ReadStats) -> dict:
    text = _text(task, path, line)
    spans: dict[str, tuple[str, int, int]] = {}
    triggers: dict[str, tuple[str, int, int]] = {}
    seen = set()
    links = []
    for number, result in enumerate(_results(task, path, line, opts, stats)):
        field = f"result[{number}]"
        if result.get("type") == "relation":
            links.append((result, field))
            continue
        if result.get("type") not in ("labels", None):
            stats.skip(f"Label Studio {result.get('type')} result not carried by the record format",
                       where(path, line))
            continue
        value = result.get("value") or {}
        start, end, labels = value.get("start"), value.get("end"), value.get("labels") or []
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            raise RecordError(f"region {result.get('id')}: offsets {start}-{end} outside the text", path=str(path),
                              line=line, field=field)
        if "text" in value and text[start:end] != value["text"]:
            raise RecordError(f"region {result.get('id')}: {value['text']!r} is not at {start}-{end} (the text "
                              f"there is {text[start:end]!r})", path=str(path), line=line, field=field)
        for label in labels:
            if (label, start, end) in seen:
                stats.note("span given twice, kept once", where(path, line))
                continue
            if result.get("from_name") == TRIGGER_CONTROL:
                triggers.setdefault(str(result.get("id")), (label, start, end))
                continue
            seen.add((label, start, end))
            spans.setdefault(str(result.get("id")), (label, start, end))
            if len(labels) > 1:
                stats.note("region with several labels: one entity per label", where(path, line))
    rid = task.get("id") if isinstance(task, dict) else None
    if opts.task == "NER":
        return record(text, "entity", [entity(text, text[s:e], label, s, e) for label, s, e in sorted(
            {(label, s, e) for label, s, e in seen}, key=lambda x: (x[1], x[2], x[0]))], rid)
    if opts.task in ("EE", "EET", "EEA"):
        return record(text, "event", _events(text, triggers, spans, links, opts.task, path, line, stats), rid)
    relations = []
    for result, field in links:
        head, tail = spans.get(str(result.get("from_id"))), spans.get(str(result.get("to_id")))
        if head is None or tail is None:
            raise RecordError("a relation between regions that are not labelled spans", path=str(path), line=line,
                              field=field)
        kinds = result.get("labels") or []
        if not kinds:
            stats.note("relation without a label: typed 'relation'", where(path, line))
        for kind in kinds or ["relation"]:
            relations.append(relation(text, text[head[1]:head[2]], kind, text[tail[1]:tail[2]], head[1:], tail[1:],
                                      head[0], tail[0]))
    return record(text, "relation", relations, rid)


def _events(text: str, triggers: dict, spans: dict, links: list, task: str, path: Path, line: int,
            stats: ReadStats) -> list[dict]:
    arguments: dict[str, list[dict]] = {rid: [] for rid in triggers}
    for result, field in links:
        source, target = str(result.get("from_id")), spans.get(str(result.get("to_id")))
        if source not in triggers:
            stats.skip("relation that does not start at a trigger region (not an event argument)", where(path, line))
            continue
        if target is None:
            raise RecordError("an event argument that is not a labelled span", path=str(path), line=line, field=field)
        for role in result.get("labels") or [target[0]]:
            arguments[source].append(argument(text, text[target[1]:target[2]], role, target[1], target[2]))
    events = [event(text, label, text[s:e], s, e, arguments[rid] if task != "EET" else [])
              for rid, (label, s, e) in triggers.items()]
    return sorted(events, key=lambda ev: (ev["trigger_start"], ev["trigger_end"], ev["event_type"]))


# -- writing: records → Label Studio tasks (pre-annotations, round trips) --------------------------------------------

def write(records: list[dict], task: str, model_version: Optional[str] = None, from_name: str = "label",
          to_name: str = "text") -> list[dict]:
    """Label Studio tasks: ``data.text`` and the items as ``labels`` regions (and ``relation`` results for RE; for
    events a ``trigger`` region with ``relation`` results to its arguments, see :data:`EVENT_CONFIG`), as
    ``predictions`` with ``model_version`` when given (pre-annotations), else as ``annotations``. An item flagged
    ``ambiguous`` (its string occurs several times) carries a region note; ungrounded strings go to the task's
    ``meta``: nothing is placed at a guessed offset."""
    tasks = []
    for rec in records:
        regions: dict[tuple, dict] = {}
        relations = []

        def region(start: int, end: int, label: str, ambiguous: bool, control: str = from_name) -> str:
            key = (start, end, label, control)
            if key not in regions:
                value = {"start": start, "end": end, "text": rec["text"][start:end], "labels": [label]}
                regions[key] = {"id": f"r{len(regions) + 1}", "from_name": control, "to_name": to_name,
                                "type": "labels", "value": value}
                if ambiguous:
                    regions[key]["meta"] = {"text": ["ambiguous: the extracted string occurs more than once"]}
                if model_version is not None:
                    regions[key]["score"] = 1.0
            return regions[key]["id"]

        for e in rec.get("entity") or []:
            region(e["start"], e["end"], e["entity_type"], bool(e.get("ambiguous")))
        for rel in rec.get("relation") or []:
            head, tail = (region(rel[f"{side}_start"], rel[f"{side}_end"], rel.get(f"{side}_type") or "entity",
                                 bool(rel.get("ambiguous"))) for side in ("head", "tail"))
            relations.append({"from_id": head, "to_id": tail, "type": "relation", "direction": "right",
                              "labels": [rel["relation"]]})
        for ev in rec.get("event") or []:
            ambiguous = bool(ev.get("ambiguous"))
            trigger = region(ev["trigger_start"], ev["trigger_end"], ev["event_type"], ambiguous, TRIGGER_CONTROL)
            for arg in ev.get("arguments") or []:
                relations.append({"from_id": trigger, "to_id": region(arg["start"], arg["end"], arg["role"], ambiguous),
                                  "type": "relation", "direction": "right", "labels": [arg["role"]]})
        result = list(regions.values()) + relations
        entry: dict = {"data": {"text": rec["text"]}}
        if model_version is not None:
            entry["predictions"] = [{"model_version": model_version, "score": 1.0, "result": result}]
        else:
            entry["annotations"] = [{"result": result}]
        if rec.get("ungrounded"):
            entry["meta"] = {"iepile_ungrounded": rec["ungrounded"]}
        tasks.append(entry)
    return tasks
