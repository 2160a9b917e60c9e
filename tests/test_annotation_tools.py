"""Readers of annotation-tool exports on the real files in ../shared/data/annotation-tools (see its README), with
counts computed here from the raw files, independently of the readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import DATA_DIR as DATA
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
