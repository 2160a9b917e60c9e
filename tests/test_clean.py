"""clean: the three rules, de-duplication with conflicts, near duplicates, and the removal report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iepile.data.clean import CleanOptions, clean_file, non_letter_ratio, rule_verdict, stopword_ratio
from iepile.records import RecordError

from conftest import DATA_DIR as DATA  # ../shared/data or $IEPILE_DATA; the data_dir fixture fails without it


def write_records(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def read(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def ner(text, *entities):
    return {"text": text, "entity": [{"entity": e, "entity_type": t} for e, t in entities]}


def test_rules():
    opts = CleanOptions()
    assert rule_verdict(ner("1996-08-22 12:30:45"), opts)[0] == "non_letter"
    assert rule_verdict(ner("------ 东京 ------"), opts)[0] == "non_letter"
    assert non_letter_ratio("Ελληνικά и русский") == 0.0  # letters of any script
    assert rule_verdict(ner("Hi!"), opts)[0] == "too_short"
    assert rule_verdict(ner("Bob", ("Bob", "person")), opts) is None  # short but labelled
    assert rule_verdict(ner("It would be great to have him here ."), opts)[0] == "stopwords"
    assert rule_verdict(ner("为什么没有人了解我呢？为什么我是那么的没用呢？"), opts)[0] == "stopwords"
    assert rule_verdict(ner("EU rejects German call to boycott British lamb ."), opts) is None
    assert stopword_ratio("青岛海牛队和广州松日队的雨中之战") < 0.5
    assert rule_verdict(ner("1996-08-22"), CleanOptions(rules=("too_short",))) is None


def test_dedup_conflicts_and_report(tmp_path):
    records = [ner("Peter Black lives in Paris .", ("Paris", "location")),
               ner("Peter Black lives in Paris .", ("Paris", "location")),
               ner("Alice works for Acme Corp today .", ("Acme Corp", "organisation")),
               ner("Alice works for Acme Corp today .", ("Alice", "person")),
               ner("1996-08-22"),
               ner("Ok .")]
    src = write_records(tmp_path / "in.json", records)
    summary = clean_file(src, tmp_path / "out.json")
    assert summary["removed"] == {"conflict": 1, "duplicate": 1, "non_letter": 1, "too_short": 1}
    assert summary["kept"] == 2 and summary["conflict_groups"] == 1
    report = read(tmp_path / "out.json.removed.jsonl")
    assert [(r["line"], r["rule"]) for r in report] == [(2, "duplicate"), (4, "conflict"), (5, "non_letter"),
                                                        (6, "too_short")]
    assert report[1]["detail"] == "same text as line 3 with different labels"
    merged = clean_file(src, tmp_path / "merged.json", CleanOptions(on_conflict="merge"))
    assert merged["merged_records"] == 1
    out = read(tmp_path / "merged.json")
    assert [e["entity"] for e in out[1]["entity"]] == ["Acme Corp", "Alice"]
    dropped = clean_file(src, tmp_path / "drop.json", CleanOptions(on_conflict="drop"))
    assert dropped["removed"]["conflict"] == 2 and dropped["kept"] == 1


def test_offsets_and_order_do_not_make_a_conflict(tmp_path):
    a = {"text": "Ann met Bob in Rome .", "entity": [{"entity": "Ann", "entity_type": "person", "start": 0, "end": 3},
                                                  {"entity": "Bob", "entity_type": "person"}]}
    b = {"text": "Ann met Bob in Rome .", "entity": [{"entity": "Bob", "entity_type": "person"},
                                                  {"entity": "Ann", "entity_type": "person"}]}
    summary = clean_file(write_records(tmp_path / "in.json", [a, b]), tmp_path / "out.json")
    assert summary["removed"] == {"duplicate": 1} and summary["conflict_groups"] == 0


def test_near_duplicates(tmp_path):
    base = "The quick brown fox jumps over the lazy dog near the river bank in the morning ."
    records = [ner(base), ner(base.replace("morning", "mornings")), ner("A completely different sentence here .")]
    src = write_records(tmp_path / "in.json", records)
    assert clean_file(src, tmp_path / "a.json")["kept"] == 3
    summary = clean_file(src, tmp_path / "b.json", CleanOptions(near_dup=0.8))
    assert summary["removed"] == {"near_duplicate": 1}
    assert read(tmp_path / "b.json.removed.jsonl")[0]["detail"].endswith("to line 1")


def test_bad_lines(tmp_path):
    src = tmp_path / "in.json"
    src.write_text('{"text": "A fine sentence here ."}\nnot json\n{"entity": []}\n', encoding="utf-8")
    with pytest.raises(RecordError, match=r"in.json:2: malformed JSON"):
        clean_file(src, tmp_path / "out.json")
    summary = clean_file(src, tmp_path / "out.json", CleanOptions(on_error="skip"))
    assert summary["rejected"] == 2 and summary["kept"] == 1
    assert [r["rule"] for r in read(tmp_path / "out.json.removed.jsonl")] == ["rejected", "rejected"]


@pytest.mark.usefixtures("data_dir")
def test_clean_real_weibo(tmp_path):
    from iepile.data.formats import import_file

    import_file(DATA / "zh/ner/weibo/dev.conll", tmp_path / "weibo.json", "conll")
    summary = clean_file(tmp_path / "weibo.json", tmp_path / "clean.json")
    report = read(tmp_path / "clean.json.removed.jsonl")
    assert summary["records_in"] == 270
    assert summary["kept"] + len(report) == 270 == summary["kept"] + sum(summary["removed"].values())
    assert len(read(tmp_path / "clean.json")) == summary["kept"]
