"""Readers of annotation-tool exports on the real files in ../shared/data/annotation-tools (see its README), with
counts computed here from the raw files, independently of the readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import DATA_DIR as DATA
from predict_support import scripted, tiny_loaded, tiny_model_dir  # noqa: F401 (fixtures)
from iepile.data.formats import import_file
from iepile.data.formats.base import ReadOptions
from iepile.records import RecordError

BRAT = DATA / "annotation-tools" / "brat"


def ann_lines(folder: Path) -> list[list[str]]:
    return [line.rstrip("\n").split("\t") for ann in sorted(folder.glob("*.ann"))
            for line in ann.read_text(encoding="utf-8").splitlines() if line.strip()]


def raw_counts(folder: Path) -> dict:
    lines = ann_lines(folder)
    events = [f for f in lines if f[0].startswith("E")]
    triggers = 0  # T lines an E line uses as its trigger, per file (ids restart in every file)
    for ann in sorted(folder.glob("*.ann")):
        fields = [line.split("\t") for line in ann.read_text(encoding="utf-8").splitlines() if line.strip()]
        triggers += len({f[1].split()[0].split(":")[1] for f in fields if f[0].startswith("E")})
    return {"spans": sum(f[0].startswith("T") for f in lines) - triggers,
            "relations": sum(f[0].startswith("R") for f in lines), "events": len(events),
            "arguments": sum(len(f[1].split()) - 1 for f in events),
            "dropped": sum(f[0][0] in "AM#N*" for f in lines),
            "discontinuous": sum(f[0].startswith("T") and ";" in f[1] for f in lines)}


def read(tmp_path, source: Path, task: str, unit: str = "document") -> tuple[list[dict], dict]:
    out = tmp_path / f"{task}-{unit}.json"
    stats = import_file(source, out, "brat", ReadOptions(task=task, unit=unit))
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()], stats


@pytest.mark.parametrize("folder", ["tutorial_news", "tutorial_bio", "craft"])
def test_brat_carries_every_entity_relation_event_and_counts_the_rest(tmp_path, folder):
    expected = raw_counts(BRAT / folder)
    for unit in ("document", "sentence"):
        entities, stats = read(tmp_path, BRAT / folder, "NER", unit)
        assert sum(len(r["entity"]) for r in entities) == expected["spans"]
        for rec in entities:  # offsets index the record's own text
            for e in rec["entity"]:
                assert rec["text"][e["start"]:e["end"]] == e["entity"]
        assert sum(stats["skipped"].values()) == expected["dropped"]
        assert stats["notes"].get("discontinuous span replaced by its covering span", 0) == expected["discontinuous"]
    relations, _ = read(tmp_path, BRAT / folder, "RE")
    assert sum(len(r["relation"]) for r in relations) == expected["relations"]
    events, stats = read(tmp_path, BRAT / folder, "EE")
    assert sum(len(r["event"]) for r in events) == expected["events"]
    assert sum(len(e["arguments"]) for r in events for e in r["event"]) == expected["arguments"]
    for rec in events:
        for ev in rec["event"]:
            assert rec["text"][ev["trigger_start"]:ev["trigger_end"]] == ev["event_trigger"]
            assert all(rec["text"][a["start"]:a["end"]] == a["argument"] for a in ev["arguments"])


def test_brat_news_relations_and_roles(tmp_path):
    relations, _ = read(tmp_path, BRAT / "tutorial_news", "RE")
    types = sorted({(r["relation"], r["head_type"], r["tail_type"]) for rec in relations for r in rec["relation"]})
    assert ("Located", "Person", "GPE") in types
    events, stats = read(tmp_path, BRAT / "tutorial_news", "EE")
    roles = {a["role"] for rec in events for e in rec["event"] for a in e["arguments"]}
    assert "Org-Arg" in roles and not any(role[-1].isdigit() for role in roles)  # Org-Arg2 is another Org-Arg
    event_args = sum(1 for f in ann_lines(BRAT / "tutorial_news") if f[0].startswith("E")
                     for arg in f[1].split()[1:] if arg.split(":")[1].startswith("E"))
    assert stats["notes"]["event as an argument: its trigger is the argument"] == event_args == 8


def test_brat_bad_offsets_name_the_file_and_line(tmp_path):
    (tmp_path / "doc.txt").write_text("Alice met Bob.", encoding="utf-8")
    (tmp_path / "doc.ann").write_text("T1\tPerson 0 5\tAlice\nT2\tPerson 10 13\tBoB\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"doc\.ann:2.*'BoB' is not the document's 'Bob'"):
        import_file(tmp_path / "doc.ann", tmp_path / "out.json", "brat", ReadOptions(task="NER"))
    assert not (tmp_path / "out.json").exists()


DOCCANO = DATA / "annotation-tools" / "doccano"


def raw_doccano(name: str) -> list[dict]:
    """The file's objects, decoded here without the reader (JSON lines, or one pretty-printed object)."""
    text = (DOCCANO / name).read_text(encoding="utf-8")
    return [json.loads(text)] if text.lstrip().startswith("{\n") else [json.loads(line) for line in
                                                                         text.splitlines() if line.strip()]


@pytest.mark.parametrize("name, labels_key", [
    ("export_sequence_labeling.jsonl", "label"), ("import_sequence_labeling_columns.jsonl", "column_label"),
    ("legacy_v1_export_sequence_labeling.jsonl", "annotations"),
])
def test_doccano_sequence_labelling(tmp_path, name, labels_key):
    raw = raw_doccano(name)
    out = tmp_path / "ner.json"
    import_file(DOCCANO / name, out, "doccano", ReadOptions(task="NER"))
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(raw)
    for rec, obj in zip(records, raw):
        assert rec["text"] == obj.get("text", obj.get("column_data"))
        spans = [(a["start_offset"], a["end_offset"]) if isinstance(a, dict) else (a[0], a[1])
                 for a in obj[labels_key]]
        assert [(e["start"], e["end"]) for e in rec["entity"]] == spans
        assert all(rec["text"][e["start"]:e["end"]] == e["entity"] for e in rec["entity"])


@pytest.mark.parametrize("name", ["export_relation_extraction.jsonl", "import_relation_extraction.jsonl",
                                  "test_relation_extraction.jsonl"])
def test_doccano_relations(tmp_path, name):
    obj = raw_doccano(name)[0]
    out = tmp_path / "re.json"
    import_file(DOCCANO / name, out, "doccano", ReadOptions(task="RE"))
    rec = json.loads(out.read_text(encoding="utf-8"))
    by_id = {e["id"]: e for e in obj["entities"]}
    expected = [(obj["text"][by_id[r["from_id"]]["start_offset"]:by_id[r["from_id"]]["end_offset"]], r["type"],
                 obj["text"][by_id[r["to_id"]]["start_offset"]:by_id[r["to_id"]]["end_offset"]])
                for r in obj["relations"]]
    assert [(r["head"], r["relation"], r["tail"]) for r in rec["relation"]] == expected


def test_doccano_errors_and_duplicates(tmp_path):
    with pytest.raises(RecordError, match=r"test_sequence_labeling\.jsonl:3: text: no text"):
        import_file(DOCCANO / "test_sequence_labeling.jsonl", tmp_path / "a.json", "doccano", ReadOptions())
    stats = import_file(DOCCANO / "test_sequence_labeling.jsonl", tmp_path / "b.json", "doccano",
                        ReadOptions(on_error="skip"))
    assert stats["records"] == 2 and stats["rejected"] == 1
    stats = import_file(DOCCANO / "test_sequence_labeling_overlapping.jsonl", tmp_path / "c.json", "doccano",
                        ReadOptions())
    assert stats["entities"] == 1 and stats["notes"]["span given twice, kept once"] == 1


LABEL_STUDIO = DATA / "annotation-tools" / "label_studio"


def test_label_studio_annotations_and_predictions(tmp_path):
    for name, source in (("named_entity_annotation.json", "annotations"),
                         ("named_entity_tasks_predictions.json", "predictions")):
        raw = json.loads((LABEL_STUDIO / name).read_text(encoding="utf-8"))
        task = raw[0] if isinstance(raw, list) else raw
        regions = [r["value"] for r in task[source][0]["result"] if r["type"] == "labels"]
        out = tmp_path / f"{source}.json"
        stats = import_file(LABEL_STUDIO / name, out, "label-studio", ReadOptions(task="NER"))
        rec = json.loads(out.read_text(encoding="utf-8"))
        assert rec["text"] == task["data"]["text"]
        assert [(e["start"], e["end"], e["entity"], e["entity_type"]) for e in rec["entity"]] == \
            [(v["start"], v["end"], v["text"], v["labels"][0]) for v in regions]
        assert ("task without annotations: its first prediction is used" in stats["notes"]) == (source == "predictions")


def test_label_studio_offsets_that_disagree_with_the_text_are_an_error(tmp_path):
    source = LABEL_STUDIO / "entities_relations_predictions.json"
    with pytest.raises(RecordError, match=r"region ent-5: offsets 68-90"):
        import_file(source, tmp_path / "a.json", "label-studio", ReadOptions(task="RE"))
    fixed = json.loads(source.read_text(encoding="utf-8"))
    region = next(r for r in fixed[0]["predictions"][0]["result"] if r.get("id") == "ent-5")
    region["value"]["start"] = fixed[0]["data"]["text"].index(region["value"]["text"])
    region["value"]["end"] = region["value"]["start"] + len(region["value"]["text"])
    (tmp_path / "fixed.json").write_text(json.dumps(fixed), encoding="utf-8")
    stats = import_file(tmp_path / "fixed.json", tmp_path / "b.json", "label-studio", ReadOptions(task="RE"))
    rec = json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))
    assert [(r["head"], r["relation"], r["tail"]) for r in rec["relation"]] == [("He", "relation", "John Smith"),
                                                                               ("her", "relation", "Mary")]
    assert stats["notes"]["relation without a label: typed 'relation'"] == 2


def test_label_studio_annotation_rule(tmp_path):
    text = "Alice met Bob in Paris."
    region = lambda rid, start, end, label: {"id": rid, "type": "labels", "from_name": "l", "to_name": "t",  # noqa
                                             "value": {"start": start, "end": end, "text": text[start:end],
                                                       "labels": [label]}}
    task = {"id": 7, "data": {"text": text}, "annotations": [
        {"id": 1, "updated_at": "2024-01-01", "result": [region("a", 0, 5, "PER")]},
        {"id": 2, "updated_at": "2024-03-01", "result": [region("b", 10, 13, "PER"), region("c", 17, 22, "LOC"),
                                                         {"type": "relation", "from_id": "b", "to_id": "c",
                                                          "labels": ["lives in"]}]},
        {"id": 3, "was_cancelled": True, "result": [region("d", 17, 22, "ORG")]}]}
    (tmp_path / "tasks.json").write_text(json.dumps([task]), encoding="utf-8")
    found = {}
    for rule in ("first", "latest", "all"):
        import_file(tmp_path / "tasks.json", tmp_path / f"{rule}.json", "label-studio",
                    ReadOptions(task="NER", annotation=rule))
        found[rule] = [e["entity"] for e in json.loads((tmp_path / f"{rule}.json").read_text())["entity"]]
    assert found == {"first": ["Alice"], "latest": ["Bob", "Paris"], "all": ["Alice", "Bob", "Paris"]}
    import_file(tmp_path / "tasks.json", tmp_path / "re.json", "label-studio", ReadOptions(task="RE",
                                                                                           annotation="latest"))
    assert json.loads((tmp_path / "re.json").read_text())["relation"][0]["relation"] == "lives in"
    with pytest.raises(ValueError, match="--annotation must be one of"):
        import_file(tmp_path / "tasks.json", tmp_path / "x.json", "label-studio", ReadOptions(annotation="best"))


# -- writing: round trips and pre-annotations ------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, source, task", [
    ("doccano", DOCCANO / "export_sequence_labeling.jsonl", "NER"),
    ("doccano", DOCCANO / "export_relation_extraction.jsonl", "RE"),
    ("label-studio", LABEL_STUDIO / "named_entity_annotation.json", "NER"),
])
def test_round_trip_import_write_import_gives_the_same_records(tmp_path, fmt, source, task):
    from iepile.data.formats import doccano, label_studio

    first = tmp_path / "first.json"
    import_file(source, first, fmt, ReadOptions(task=task))
    records = [json.loads(line) for line in first.read_text(encoding="utf-8").splitlines()]
    written = tmp_path / ("written.jsonl" if fmt == "doccano" else "written.json")
    if fmt == "doccano":
        written.write_text("".join(json.dumps(o) + "\n" for o in doccano.write(records, task)), encoding="utf-8")
    else:
        written.write_text(json.dumps(label_studio.write(records, task)), encoding="utf-8")
    second = tmp_path / "second.json"
    import_file(written, second, fmt, ReadOptions(task=task))
    again = [json.loads(line) for line in second.read_text(encoding="utf-8").splitlines()]
    strip = lambda recs: [{k: v for k, v in r.items() if k != "id"} for r in recs]  # noqa: E731
    assert strip(again) == strip(records) and sum(len(r.get("entity") or r.get("relation")) for r in records)


def test_pre_annotations_place_every_occurrence_and_never_guess(tmp_path, scripted):
    from iepile.data.formats import label_studio
    from iepile.inference.exports import export, results_to_records
    from iepile.inference.extract import Extractor

    answers = {"person": ["Alice", "Zed"], "location": ["Paris"]}
    generator = scripted(lambda schema, text: json.dumps({k: answers.get(k, []) for k in schema}))
    text = "Alice met Alice's sister in Paris."
    results = Extractor(generator=generator).extract_batch([text], ["person", "location"], task="NER")
    record = results_to_records(results, "NER")[0]
    assert [(e["entity"], e["start"], e.get("ambiguous", False)) for e in record["entity"]] == \
        [("Alice", 0, True), ("Alice", 10, True), ("Paris", 28, False)]
    assert record["ungrounded"] == [{"label": "person", "value": "Zed"}]
    tasks = json.loads(export(results, "NER", "label-studio", "my-adapter"))
    prediction = tasks[0]["predictions"][0]
    assert prediction["model_version"] == "my-adapter"
    assert [r["value"]["text"] for r in prediction["result"]] == ["Alice", "Alice", "Paris"]
    assert all("ambiguous" in r["meta"]["text"][0] for r in prediction["result"][:2])
    assert tasks[0]["meta"]["iepile_ungrounded"] == [{"label": "person", "value": "Zed"}]
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    import_file(path, tmp_path / "back.json", "label-studio", ReadOptions(task="NER"))
    back = json.loads((tmp_path / "back.json").read_text(encoding="utf-8"))
    assert [(e["entity"], e["start"]) for e in back["entity"]] == [("Alice", 0), ("Alice", 10), ("Paris", 28)]
    assert label_studio.write([record], "NER")[0]["annotations"]  # without a model version: annotations


def test_extract_cli_writes_label_studio_predictions(tmp_path, tiny_model_dir):
    from typer.testing import CliRunner

    from iepile.cli import app

    out = tmp_path / "tasks.json"
    result = CliRunner().invoke(app, ["extract", "--model", str(tiny_model_dir), "--dtype", "fp32", "--max-new-tokens",
                                      "16", "--schema", '["person", "location"]', "--text", "Alice lives in Paris.",
                                      "--format", "label-studio", "-o", str(out)])
    assert result.exit_code == 0, result.output
    tasks = json.loads(out.read_text(encoding="utf-8"))
    assert tasks[0]["data"]["text"] == "Alice lives in Paris."
    assert tasks[0]["predictions"][0]["model_version"] == tiny_model_dir.name
    refused = CliRunner().invoke(app, ["extract", "--model", str(tiny_model_dir), "--schema", '{"e": ["r"]}',
                                       "--task", "EE", "--text", "x", "--format", "doccano"])
    assert refused.exit_code == 1 and "doccano has no event shape" in refused.output
    refused = CliRunner().invoke(app, ["extract", "--model", str(tiny_model_dir), "--schema", '{"e": ["r"]}',
                                       "--task", "EEA", "--text", "x", "--format", "brat", "-o", str(tmp_path / "b")])
    assert refused.exit_code == 1 and "exports NER, RE, EE, EET results, not EEA" in refused.output
    folder = tmp_path / "brat"
    written = CliRunner().invoke(app, ["extract", "--model", str(tiny_model_dir), "--dtype", "fp32", "--max-new-tokens",
                                       "16", "--schema", '["person"]', "--text", "Alice lives in Paris.", "--format",
                                       "brat", "-o", str(folder)])
    assert written.exit_code == 0, written.output
    assert (folder / "0000.txt").read_text(encoding="utf-8") == "Alice lives in Paris." and (folder / "0000.ann").exists()
    docbin = tmp_path / "pre.spacy"
    written = CliRunner().invoke(app, ["extract", "--model", str(tiny_model_dir), "--dtype", "fp32", "--max-new-tokens",
                                       "16", "--schema", '["person"]', "--text", "Alice lives in Paris.", "--format",
                                       "spacy", "-o", str(docbin)])
    assert written.exit_code == 0, written.output
    import spacy
    from spacy.tokens import DocBin

    assert [d.text for d in DocBin().from_disk(docbin).get_docs(spacy.blank("en").vocab)] == ["Alice lives in Paris."]
    no_folder = CliRunner().invoke(app, ["extract", "--schema", '["person"]', "--text", "x", "--format", "brat"])
    assert no_folder.exit_code == 1 and "give -o FOLDER" in no_folder.output


@pytest.mark.parametrize("task", ["NER", "RE"])
def test_brat_round_trip_and_ambiguity_notes(tmp_path, task):
    from iepile.data.formats import brat

    records, _ = read(tmp_path, BRAT / "tutorial_news", task)
    records = [{k: v for k, v in r.items() if k != "id"} for r in records]
    marked = json.loads(json.dumps(records))  # a deep copy: the flag must not reach the compared records
    items = marked[0].get("entity") or marked[0].get("relation")
    items[0] = {**items[0], "ambiguous": True}
    assert brat.write(marked, task, tmp_path / "out") == len(records)
    note = [line for line in (tmp_path / "out" / "0000.ann").read_text(encoding="utf-8").splitlines()
            if line.startswith("#")]
    assert len(note) == (1 if task == "NER" else 2)  # a relation's note goes on its head and its tail
    assert "AnnotatorNotes T1\tambiguous" in note[0]
    again = tmp_path / "again.json"
    import_file(tmp_path / "out", again, "brat", ReadOptions(task=task, unit="document"))
    back = [{k: v for k, v in json.loads(line).items() if k != "id"} for line in
            again.read_text(encoding="utf-8").splitlines()]
    order = lambda recs: [sorted(json.dumps(i, sort_keys=True) for i in r.get("entity") or r.get("relation"))  # noqa
                          for r in recs]
    assert [r["text"] for r in back] == [r["text"] for r in records] and order(back) == order(records)
    with pytest.raises(ValueError, match="not empty"):
        brat.write(records, task, tmp_path / "out")


def canonical_events(records: list[dict]) -> list[list[str]]:
    """Events compared without their order (readers list them by trigger or by E line) nor their arguments'."""
    return [sorted(json.dumps({**e, "arguments": sorted(e["arguments"], key=lambda a: json.dumps(a, sort_keys=True))},
                              sort_keys=True) for e in r["event"]) for r in records]


@pytest.mark.parametrize("fmt", ["brat", "label-studio", "spacy"])
@pytest.mark.parametrize("folder", ["tutorial_news", "tutorial_bio"])
def test_events_round_trip_through_every_tool_that_has_an_event_shape(tmp_path, fmt, folder):
    """brat's own event tutorials (nested events, numbered and repeated roles) → records → the tool → records."""
    from iepile.data.formats import brat, label_studio, spacy_docs

    records, _ = read(tmp_path, BRAT / folder, "EE")
    records = [{k: v for k, v in r.items() if k != "id"} for r in records]
    counts = raw_counts(BRAT / folder)
    assert sum(len(r["event"]) for r in records) == counts["events"]
    assert sum(len(e["arguments"]) for r in records for e in r["event"]) == counts["arguments"]
    written = tmp_path / {"brat": "out", "label-studio": "tasks.json", "spacy": "docs.spacy"}[fmt]
    if fmt == "brat":
        brat.write(records, "EE", written)
        assert any(line.startswith("E") for line in (written / "0000.ann").read_text(encoding="utf-8").splitlines())
    elif fmt == "label-studio":
        written.write_text(json.dumps(label_studio.write(records, "EE")), encoding="utf-8")
    else:
        spacy_docs.write(records, written)
    back = tmp_path / "back.json"
    import_file(written, back, fmt, ReadOptions(task="EE", unit="document", language="en"))
    again = [{k: v for k, v in json.loads(line).items() if k != "id"}
             for line in back.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in again] == [r["text"] for r in records]
    assert canonical_events(again) == canonical_events(records)
    triggers = tmp_path / "eet.json"
    import_file(written, triggers, fmt, ReadOptions(task="EET", unit="document", language="en"))
    eet = [json.loads(line) for line in triggers.read_text(encoding="utf-8").splitlines()]
    assert [[(e["event_type"], e["trigger_start"]) for e in sorted(r["event"], key=lambda e: e["trigger_start"])]
            for r in eet] == [[(e["event_type"], e["trigger_start"]) for e in sorted(
                r["event"], key=lambda e: e["trigger_start"])] for r in records]


def test_event_pre_annotations_are_placed_at_their_trigger(tmp_path, scripted):
    from iepile.data.formats import label_studio
    from iepile.inference.exports import export, results_to_records
    from iepile.inference.extract import Extractor

    text = "Rebels attacked the town. Later the army attacked the rebels."
    key = lambda item: item["event_type"]  # noqa: E731 (EE schema items are objects)
    answers = {"attack": [{"trigger": "attacked", "arguments": {"attacker": "army", "target": ["rebels", "Mars"]}},
                          {"trigger": "invaded", "arguments": {"attacker": "NAN", "target": "NAN"}}]}
    generator = scripted(lambda schema, text: json.dumps({key(k): answers.get(key(k), []) for k in schema}))
    results = Extractor(generator=generator).extract_batch([text], {"attack": ["attacker", "target"]}, task="EE")
    [record] = results_to_records(results, "EE")
    [event] = record["event"]
    # "attacked" occurs twice: the occurrence nearest its arguments (the second sentence), flagged
    assert (event["trigger_start"], event["ambiguous"]) == (text.index("attacked", 10), True)
    assert [(a["role"], a["argument"], a["start"]) for a in event["arguments"]] == \
        [("attacker", "army", text.index("army")), ("target", "rebels", text.index("rebels"))]
    assert record["ungrounded"] == [{"label": "attack", "role": "target", "value": "Mars"},
                                    {"label": "attack", "value": {"trigger": "invaded",
                                                                  "arguments": {"attacker": "NAN", "target": "NAN"}}}]
    [task] = json.loads(export(results, "EE", "label-studio", "m"))
    result = task["predictions"][0]["result"]
    assert [(r["from_name"], r["value"]["labels"]) for r in result if r["type"] == "labels"] == \
        [("trigger", ["attack"]), ("label", ["attacker"]), ("label", ["target"])]
    assert [r["labels"] for r in result if r["type"] == "relation"] == [["attacker"], ["target"]]
    assert "trigger" in label_studio.EVENT_CONFIG
    export(results, "EE", "brat", "m", str(tmp_path / "brat"))
    ann = (tmp_path / "brat" / "0000.ann").read_text(encoding="utf-8")
    assert "E1\tattack:T1 attacker:T2 target:T3" in ann and "AnnotatorNotes T1" in ann
