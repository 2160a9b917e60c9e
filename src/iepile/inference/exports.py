"""Pre-annotations: extraction results as unified records with offsets, written in an annotation tool's import
shape (``iepile extract --format doccano|label-studio|brat|spacy``; the writers live with their readers in
:mod:`iepile.data.formats`).

Offsets come from grounding, never from a guess: a string found once is placed there; a string found several times
is written at every occurrence (NER) or at the closest head/tail pair (RE), flagged ``ambiguous`` so that the tool
shows a note; a string not found in the text (paraphrased or hallucinated) is not placed at all and is listed in the
record's ``ungrounded``. Events (EE, EET) are placed at their trigger: the trigger occurrence nearest to the event's
arguments, each argument at its occurrence nearest to that trigger; an event whose trigger is not in the text is
listed in ``ungrounded`` whole, an argument that is not, on its own. EEA answers carry no trigger, and the tools
place an event at one: not exported (their JSON lines are).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

from iepile.inference.grounding import NAN

EXPORT_FORMATS = ("jsonl", "doccano", "label-studio", "brat", "spacy")
EXPORT_TASKS = ("NER", "RE", "EE", "EET")


def results_to_records(results: Sequence, task: str) -> list[dict]:
    """Unified records (``entity``, ``relation`` or ``event`` items with offsets) from :class:`ExtractionResult`
    objects."""
    if task.upper() not in PLACED_TASKS:
        raise ValueError(f"--format exports {', '.join(EXPORT_TASKS)} results, not {task}")
    convert = PLACED_TASKS[task.upper()]
    return [convert(r) for r in results]


def _ner(result) -> dict:
    entities, ungrounded = [], []
    for item in result.items:
        offsets = item.spans[0]["offsets"] if item.spans else []
        if not offsets:
            ungrounded.append({"label": item.label, "value": item.value})
        for start, end in offsets:
            entities.append({"entity": result.text[start:end], "entity_type": item.label, "start": start,
                             "end": end, **({"ambiguous": True} if len(offsets) > 1 else {})})
    entities.sort(key=lambda e: (e["start"], e["end"], e["entity_type"]))
    return {"text": result.text, "entity": entities, **({"ungrounded": ungrounded} if ungrounded else {})}


def _re(result) -> dict:
    relations, ungrounded = [], []
    for item in result.items:
        value = item.value if isinstance(item.value, dict) else {}
        where = {span["text"]: span["offsets"] for span in item.spans}
        heads, tails = where.get(str(value.get("subject", "")).strip()), where.get(str(value.get("object", "")).strip())
        if not heads or not tails:
            ungrounded.append({"label": item.label, "value": item.value})
            continue
        (hs, he), (ts, te) = min(((h, t) for h in heads for t in tails), key=lambda p: abs(p[0][0] - p[1][0]))
        relations.append({"head": result.text[hs:he], "relation": item.label, "tail": result.text[ts:te],
                          "head_start": hs, "head_end": he, "tail_start": ts, "tail_end": te,
                          **({"ambiguous": True} if len(heads) > 1 or len(tails) > 1 else {})})
    return {"text": result.text, "relation": relations, **({"ungrounded": ungrounded} if ungrounded else {})}


def _events(result) -> dict:
    events, ungrounded = [], []
    for item in result.items:
        where = {span["text"]: span["offsets"] for span in item.spans}
        value = item.value if isinstance(item.value, dict) else {"trigger": item.value, "arguments": {}}  # EET
        triggers = where.get(str(value.get("trigger", "")).strip())
        if not triggers:
            ungrounded.append({"label": item.label, "value": item.value})
            continue
        arguments = [(role, v.strip()) for role, values in (value.get("arguments") or {}).items()
                     for v in (values if isinstance(values, list) else [values])
                     if isinstance(v, str) and v.strip() and v != NAN]
        placed = [where.get(v) for _, v in arguments]
        start, end = min(triggers, key=lambda t: sum(_distance(t, o) for o in placed if o))
        event = {"event_type": item.label, "event_trigger": result.text[start:end], "trigger_start": start,
                 "trigger_end": end, "arguments": []}
        for (role, v), occurrences in zip(arguments, placed):
            if not occurrences:
                ungrounded.append({"label": item.label, "role": role, "value": v})
                continue
            a, b = min(occurrences, key=lambda o: abs(o[0] - start))
            event["arguments"].append({"argument": result.text[a:b], "role": role, "start": a, "end": b})
        if item.ambiguous:
            event["ambiguous"] = True
        events.append(event)
    events.sort(key=lambda e: (e["trigger_start"], e["trigger_end"], e["event_type"]))
    return {"text": result.text, "event": events, **({"ungrounded": ungrounded} if ungrounded else {})}


def _distance(trigger: list[int], occurrences: list[list[int]]) -> int:
    return min(abs(o[0] - trigger[0]) for o in occurrences)


# how each task's items are placed (SPO triples as RE's); EXPORT_TASKS are those the tools' formats take
PLACED_TASKS = {"NER": _ner, "RE": _re, "SPO": _re, "EE": _events, "EET": _events}

FILE_FORMATS = ("brat", "spacy")  # written to -o only: a folder of .txt/.ann pairs, a binary DocBin


def check_export(fmt: str, task: str, output: Optional[str]) -> None:
    """Refuse an export that cannot be written, before the model runs."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    if fmt != "jsonl" and task.upper() not in EXPORT_TASKS:
        raise ValueError(f"--format {fmt} exports {', '.join(EXPORT_TASKS)} results, not {task}")
    if fmt == "doccano" and task.upper() not in ("NER", "RE"):
        raise ValueError("doccano has no event shape (sequence labels and relations only): use --format brat, "
                         "label-studio or spacy for events")
    if fmt in FILE_FORMATS and not output:
        raise ValueError(f"--format {fmt} writes files: give -o {'FOLDER' if fmt == 'brat' else 'FILE.spacy'}")
    if output:
        from iepile.fileio import check_writable

        check_writable(output, "--output")


def export(results: Sequence, task: str, fmt: str, model_version: str, output: Optional[str] = None) -> str:
    """Write ``results`` in ``fmt`` to ``output`` (atomically), or return the text for standard output when there is
    no ``output``; returns what was written as a line for the user then."""
    if fmt in FILE_FORMATS:
        records = results_to_records(results, task)
        if fmt == "brat":
            from iepile.data.formats import brat

            return f"{brat.write(records, task.upper(), output)} documents (.txt + .ann) → {output}"
        from iepile.data.formats import spacy_docs

        languages = {r.language for r in results}
        language = languages.pop() if len(languages) == 1 else "xx"
        return f"{spacy_docs.write(records, Path(output), language)} docs → {output}"
    content = export_text(results, task, fmt, model_version)
    if output is None:
        return content
    from iepile.fileio import write_text_atomic

    write_text_atomic(output, content)
    return f"{len(results)} results → {output}"


def export_text(results: Sequence, task: str, fmt: str, model_version: str) -> str:
    """The file content of a text format: JSON lines for jsonl and doccano, a JSON task list for Label Studio."""
    if fmt == "jsonl":
        return "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in results)
    records = results_to_records(results, task)
    if fmt == "doccano":
        from iepile.data.formats.doccano import write

        return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in write(records, task.upper()))
    if fmt == "label-studio":
        from iepile.data.formats.label_studio import write

        return json.dumps(write(records, task.upper(), model_version=model_version), ensure_ascii=False, indent=1) \
            + "\n"
    raise ValueError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")


def model_version(model, adapter) -> str:
    """What Label Studio shows as the predictions' model: the adapter or model folder name."""
    return Path(adapter or model).name if (adapter or model) else "SmolLM2-135M-Instruct (base)"
