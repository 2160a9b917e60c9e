"""The ``iepile eval`` command (terminal table, --json, --report) and hypothesis-generated records."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from eval_support import perfect_predictions, write_jsonl
from iepile.cli import app
from iepile.evaluate import EvalOptions, evaluate_lines

WORDS = ["alpha", "beta", "Gamma", "delta", "ÉPSILON", "北京", "上海", "x", "NAN", "co-op"]
TYPES = ["person", "place", "org"]


def test_cli_writes_json_and_report(tmp_path):
    text = "Alice met Bob in Paris ."
    label = json.dumps([{"entity": "Alice", "entity_type": "person"}, {"entity": "Paris", "entity_type": "location"}])
    instruction = json.dumps({"instruction": "x", "schema": ["person", "location"], "input": text})
    pred = write_jsonl(tmp_path / "pred.jsonl", [
        {"id": "1", "task": "NER", "source": "demo", "instruction": instruction, "label": label,
         "output": json.dumps({"person": ["Alice", "Bob"], "location": ["Pari"]})}])
    result = CliRunner().invoke(app, ["eval", str(pred), "--mode", "strict", "--json", str(tmp_path / "r.json"),
                                      "--report", str(tmp_path / "r.html"), "--by-type"])
    assert result.exit_code == 0, result.output
    assert "NER" in result.output and "entity" in result.output
    saved = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert set(saved["summary"]["NER"]) == {"level", "precision", "recall", "f1", "tp", "pred", "gold"}
    assert saved["summary"]["NER"]["tp"] == 1
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<span class='p'>Pari</span>" in html or "class='g p'" in html
    assert "boundary" in html and "<script" not in html


def test_cli_reports_unknown_mode(tmp_path):
    pred = write_jsonl(tmp_path / "pred.jsonl", [])
    result = CliRunner().invoke(app, ["eval", str(pred), "--mode", "fuzzy"])
    assert result.exit_code == 1 and "unknown mode" in result.output


@st.composite
def ner_records(draw):
    records = []
    for _ in range(draw(st.integers(1, 6))):
        words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=8))
        text = " ".join(words)
        entities = [{"entity": word, "entity_type": draw(st.sampled_from(TYPES))}
                    for word in draw(st.lists(st.sampled_from(words), max_size=4))]
        records.append({"text": text, "entity": entities})
    return records


@st.composite
def re_records(draw):
    records = []
    for _ in range(draw(st.integers(1, 5))):
        words = draw(st.lists(st.sampled_from(WORDS), min_size=2, max_size=8))
        relations = [{"head": draw(st.sampled_from(words)), "relation": draw(st.sampled_from(["r1", "r2", "r_3"])),
                      "tail": draw(st.sampled_from(words))} for _ in range(draw(st.integers(0, 4)))]
        records.append({"text": " ".join(words), "relation": relations})
    return records


@settings(max_examples=40, deadline=None)
@given(records=ner_records(), split_num=st.sampled_from([1, 2, 6, -1]))
def test_generated_ner_records_round_trip(records, split_num):
    lines = perfect_predictions(records, "NER", TYPES, split_num=split_num)
    for mode in ("iepile", "strict", "normalized"):
        micro = evaluate_lines(lines, EvalOptions(mode=mode))["summary"]["NER"]
        if micro["gold"]:
            assert (micro["precision"], micro["recall"], micro["f1"]) == (100.0, 100.0, 100.0)
        assert micro["tp"] == micro["pred"] == micro["gold"]


@settings(max_examples=40, deadline=None)
@given(records=re_records(), drop=st.integers(0, 3))
def test_generated_re_records_partial_answers(records, drop):
    """Dropping answer pairs lowers recall by exactly what was dropped and never precision."""
    lines = perfect_predictions(records, "RE", ["r1", "r2", "r_3"], split_num=2)
    dropped = 0
    for line in lines:
        answer = json.loads(line["output"])
        for relation, pairs in answer.items():
            cut = min(drop, len(pairs))
            dropped += len({(p["subject"], p["object"]) for p in pairs[:cut]})
            answer[relation] = pairs[cut:]
        line["output"] = json.dumps(answer)
    micro = evaluate_lines(lines, EvalOptions(mode="strict"))["summary"]["RE"]
    assert micro["gold"] - micro["tp"] == dropped
    assert micro["pred"] == micro["tp"]
