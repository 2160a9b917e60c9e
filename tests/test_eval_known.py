"""Hand-built prediction files with known P/R/F1, every error kind and every malformed-answer kind."""

from __future__ import annotations

import json

import pytest

from iepile.evaluate import EvalOptions, evaluate_lines
from iepile.instructions import build_instruction

ZH_TEXT = "相比之下，青岛海牛队和广州松日队的雨中之战虽然也是0∶0，但乏善可陈。"
ZH_LABEL = [{"entity": "广州松日队", "entity_type": "组织机构"}, {"entity": "青岛海牛队", "entity_type": "组织机构"}]


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def line(task, text, schema, label, output, source="src", id_=None, record_index=None, language="en") -> dict:
    """A prediction line as the reference's inference writes it (plus record_index when given)."""
    result = {"id": id_ or str(abs(hash(text))), "task": task, "source": source,
              "instruction": build_instruction(task, language, schema, text), "label": dumps(label),
              "output": output if isinstance(output, str) else dumps(output)}
    if record_index is not None:
        result["record_index"] = record_index
    return result


def level(result, task, name):
    return result["tasks"][task]["levels"][name]


def prf(row):
    return row["precision"], row["recall"], row["f1"]


# -- Appendix A and other reference-readable files ------------------------------------------------------------------

def test_appendix_a_worked_example():
    pred = line("NER", ZH_TEXT, ["人物", "地理位置", "组织机构"], ZH_LABEL,
                {"人物": [], "地理位置": [], "组织机构": ["青岛海牛队"]}, source="NER", language="zh")
    result = evaluate_lines([pred], EvalOptions(mode="iepile"))
    assert prf(result["summary"]["NER"]) == (100.0, 50.0, 66.67)
    assert result["reference"]["NER"]["total"] == {"总样本数": 1, "错误数": 0, "P": 100.0, "R": 50.0, "F1": 66.67}
    assert level(result, "NER", "entity")["errors"]["missed"] == 1


def ner_file():
    """Two records, one split over two chunks that both emit the same entity, one unparseable chunk."""
    text_a = "Alice met Bob in Paris ."
    label_a = [{"entity": "Alice", "entity_type": "person"}, {"entity": "Bob", "entity_type": "person"},
               {"entity": "Paris", "entity_type": "location"}]
    text_b = "Acme hired Carol ."
    label_b = [{"entity": "Acme", "entity_type": "organisation"}, {"entity": "Carol", "entity_type": "person"}]
    return [
        line("NER", text_a, ["person"], label_a, {"person": ["Alice", "Bob", "Bob"]}, source="s1"),
        line("NER", text_a, ["location"], label_a, {"location": ["Paris", "Alice"]}, source="s1"),
        line("NER", text_b, ["person", "organisation"], label_b, '{"person": ["Carol"], "organisation": ["Ac',
             source="s2"),
        line("NER", text_b, ["misc"], label_b, {"misc": []}, source="s2"),
    ]


def test_reference_readable_file_iepile_mode():
    # pred: Alice, Bob, Bob (dup), Paris, Alice(location); chunk 3 unparseable → tp 3, pred 5, gold 5
    result = evaluate_lines(ner_file(), EvalOptions(mode="iepile"))
    row = level(result, "NER", "entity")
    assert (row["tp"], row["pred"], row["gold"]) == (3, 5, 5)
    assert prf(row) == (60.0, 60.0, 60.0)
    assert result["reference"]["NER"]["total"]["错误数"] == 1
    assert result["reference"]["NER"]["s1"] == {"总样本数": 1, "错误数": 0, "P": 60.0, "R": 100.0, "F1": 75.0}
    assert result["reference"]["NER"]["s2"] == {"总样本数": 1, "错误数": 1, "P": 0.0, "R": 0.0, "F1": 0.0}
    assert result["parse"]["repairable"] == 1


def test_strict_mode_sets_and_repairs():
    result = evaluate_lines(ner_file(), EvalOptions(mode="strict"))
    row = level(result, "NER", "entity")
    # set per record: Alice, Bob, Paris, Alice/location + the truncated chunk cut back to {"person": ["Carol"],
    # "organisation": []} (the half-written "Ac" is dropped) → tp 4, pred 5, gold 5
    assert (row["tp"], row["pred"], row["gold"]) == (4, 5, 5)
    assert row["precision"] == 80.0
    assert result["parse"]["repaired"] == 1
    # Alice/location: its span is already correctly typed, so it is spurious, not a type confusion
    assert (row["errors"]["spurious"], row["errors"]["missed"], row["errors"]["wrong_type"]) == (1, 1, 0)


def test_rounding_before_f1_is_the_references():
    # tp 1, pred 3, gold 7: P 33.33, R 14.29 → F1 from rounded values 20.0 (2·33.33·14.29/47.62 = 20.004)
    text = "a b c d e f g"
    label = [{"entity": w, "entity_type": "x"} for w in text.split()]
    pred = line("NER", text, ["x"], label, {"x": ["a", "zz", "yy"]})
    iepile = evaluate_lines([pred], EvalOptions(mode="iepile"))["summary"]["NER"]
    assert prf(iepile) == (33.33, 14.29, 20.0)
    strict = evaluate_lines([pred], EvalOptions(mode="strict"))["summary"]["NER"]
    assert strict["f1"] == pytest.approx(20.0)


def test_grouping_by_source_and_id_without_record_index():
    text = "Bob ran ."
    label = [{"entity": "Bob", "entity_type": "person"}]
    lines = [line("NER", text, ["person"], label, {"person": ["Bob"]}, id_="same", source="a"),
             line("NER", text, ["person"], label, {"person": ["Bob"]}, id_="same", source="a"),
             line("NER", text, ["person"], label, {"person": ["Bob"]}, id_="same", source="b")]
    merged = evaluate_lines(lines, EvalOptions(mode="iepile"))
    assert merged["records"] == 2
    assert (level(merged, "NER", "entity")["tp"], level(merged, "NER", "entity")["pred"]) == (2, 3)
    for index, item in zip((0, 1, 0), lines):  # record_index counts from 0 in each source (one convert run each)
        item["record_index"] = index
    separate = evaluate_lines(lines, EvalOptions(mode="iepile"))
    assert separate["records"] == 3 and prf(separate["summary"]["NER"]) == (100.0, 100.0, 100.0)


def test_re_subject_object_and_missing_keys():
    text = "Paris is the capital of France ."
    label = [{"head": "France", "relation": "capital", "tail": "Paris"}]
    good = line("RE", text, ["capital"], label, {"capital": [{"subject": "France", "object": "Paris"},
                                                           {"object": "Paris"}]})
    row = level(evaluate_lines([good], EvalOptions(mode="iepile")), "RE", "relation")
    assert (row["tp"], row["pred"], row["gold"]) == (1, 2, 1)
    old_keys = line("RE", text, ["capital"], label, {"capital": [{"head": "France", "tail": "Paris"}]})
    assert level(evaluate_lines([old_keys], EvalOptions(mode="iepile")), "RE", "relation")["tp"] == 0
    assert level(evaluate_lines([old_keys], EvalOptions(mode="strict")), "RE", "relation")["tp"] == 1
    # outside iepile mode an incomplete pair (no subject) is not a prediction
    assert level(evaluate_lines([good], EvalOptions(mode="strict")), "RE", "relation")["pred"] == 1


# -- error kinds ------------------------------------------------------------------------------------------------------

def test_each_error_kind():
    text = "John Smith works for Acme Corp in Berlin ."
    label = [{"entity": "John Smith", "entity_type": "person"}, {"entity": "Acme Corp", "entity_type": "organisation"},
             {"entity": "Berlin", "entity_type": "location"}, {"entity": "Germany", "entity_type": "location"}]
    answer = {"person": ["John"],                       # boundary
              "organisation": ["Berlin", "Acme Corp"],   # wrong type (Berlin), correct
              "location": ["works", "Munich"]}           # spurious, hallucinated
    pred = line("NER", text, ["person", "organisation", "location"], label, answer)
    row = level(evaluate_lines([pred], EvalOptions(mode="strict")), "NER", "entity")
    assert {k: v for k, v in row["errors"].items() if v} == {
        "correct": 1, "boundary": 1, "wrong_type": 1, "spurious": 1, "hallucinated": 1, "missed": 1}
    assert row["top_confusions"] == [["location", "organisation", 1]]
    assert ["organisation", "organisation", 1] in row["confusion"]
    assert row["examples"]["boundary"][0]["pred"] == ["person", "John"]


def test_reversed_head_tail_and_parse_failure():
    text = "Paris is the capital of France ."
    label = [{"head": "France", "relation": "capital", "tail": "Paris"}]
    lines = [line("RE", text, ["capital"], label, {"capital": [{"subject": "Paris", "object": "France"}]},
                  record_index=0),
             line("RE", text, ["born in"], label, "I cannot answer that.", record_index=0)]
    result = evaluate_lines(lines, EvalOptions(mode="strict"))
    row = level(result, "RE", "relation")
    assert row["errors"]["reversed"] == 1 and row["errors"]["parse_failure"] == 1
    assert result["parse"] == {"clean": 1, "repaired": 0, "failed": 1, "repairable": 0, "off_schema_keys": 0}


@pytest.mark.parametrize("output, status", [
    ('```json\n{"person": ["Bob"]}\n```', "repaired"),
    ('Answer: {"person": ["Bob"]}. Done.', "repaired"),
    ('{"person": ["Bob"', "repaired"),
    ("{'person': ['Bob']}", "repaired"),
    ('{"person": ["Bob"]}{"person": ["Bob"]}', "repaired"),
    ("no json here", "failed"),
])
def test_malformed_answers(output, status):
    text = "Bob ran ."
    pred = line("NER", text, ["person"], [{"entity": "Bob", "entity_type": "person"}], output)
    strict = evaluate_lines([pred], EvalOptions(mode="strict"))
    assert strict["parse"][status] == 1
    assert strict["summary"]["NER"]["tp"] == (1 if status == "repaired" else 0)
    reference = evaluate_lines([pred], EvalOptions(mode="iepile"))
    assert reference["parse"]["failed"] == 1 and reference["summary"]["NER"]["tp"] == 0
    assert evaluate_lines([pred], EvalOptions(mode="iepile", repair=True))["summary"]["NER"]["tp"] == (
        1 if status == "repaired" else 0)


# -- events, off-schema, normalisation, bootstrap -------------------------------------------------------------------

EE_TEXT = "5月份在华裁员900余人，公司随后解散。"
EE_LABEL = [{"event_type": "裁员", "event_trigger": "裁员",
             "arguments": [{"argument": "900余人", "role": "人数"}, {"argument": "5月份", "role": "时间"}]}]
EE_SCHEMA = [{"event_type": "裁员", "trigger": True, "arguments": ["人数", "时间"]}]


def test_ee_levels_and_strict_arguments():
    answer = {"裁员": [{"trigger": "解散", "arguments": {"人数": "900余人", "时间": "NAN"}}]}
    pred = line("EE", EE_TEXT, EE_SCHEMA, EE_LABEL, answer, language="zh")
    result = evaluate_lines([pred], EvalOptions(mode="iepile"))
    assert level(result, "EE", "trigger")["tp"] == 0
    assert (level(result, "EE", "argument")["tp"], level(result, "EE", "argument")["gold"]) == (1, 2)
    assert level(result, "EE", "argument_strict")["tp"] == 0
    assert set(result["reference"]["EE"]["total"]) == {"总样本数", "错误数", "event_P", "event_R", "event_F1",
                                                       "argument_P", "argument_R", "argument_F1"}


def test_off_schema_keys_counted_and_optionally_ignored():
    answer = {"裁员": [{"trigger": "裁员", "arguments": {"人数": "900余人", "时间": "5月份", "地点": "华"}}],
              "解散": [{"trigger": "解散", "arguments": {}}]}
    pred = line("EE", EE_TEXT, EE_SCHEMA, EE_LABEL, answer, language="zh")
    kept = evaluate_lines([pred], EvalOptions(mode="strict"))
    assert kept["parse"]["off_schema_keys"] == 2
    assert level(kept, "EE", "argument")["pred"] == 3 and level(kept, "EE", "trigger")["pred"] == 2
    ignored = evaluate_lines([pred], EvalOptions(mode="strict", ignore_off_schema=True))
    assert ignored["parse"]["off_schema_keys"] == 2
    assert all(prf(row) == (100.0, 100.0, 100.0) for row in ignored["tasks"]["EE"]["levels"].values())


def test_normalized_mode():
    text = "ＡＣＭＥ  Corp hired bob ."
    label = [{"entity": "ＡＣＭＥ  Corp", "entity_type": "Org"}, {"entity": "bob", "entity_type": "person"}]
    pred = line("NER", text, ["Org", "person"], label, {"Org": ["acme corp"], "person": ["Bob"]})
    assert evaluate_lines([pred], EvalOptions(mode="strict"))["summary"]["NER"]["tp"] == 0
    assert prf(evaluate_lines([pred], EvalOptions(mode="normalized"))["summary"]["NER"]) == (100.0, 100.0, 100.0)


def test_bootstrap_interval_contains_the_estimate():
    lines = []
    for index in range(60):
        text = f"w{index} x{index} ."
        label = [{"entity": f"w{index}", "entity_type": "a"}, {"entity": f"x{index}", "entity_type": "a"}]
        lines.append(line("NER", text, ["a"], label, {"a": [f"w{index}"] + ([f"x{index}"] if index % 3 else [])},
                          record_index=index))
    result = evaluate_lines(lines, EvalOptions(mode="strict", bootstrap=200, seed=1))
    row = level(result, "NER", "entity")
    low, high = row["ci95"]["recall"]
    assert low <= row["recall"] <= high and high - low > 0
    assert row["ci95"]["precision"] == [100.0, 100.0]


def test_macro_and_breakdowns():
    text = "Alice met Bob in Paris ."
    label = [{"entity": "Alice", "entity_type": "person"}, {"entity": "Paris", "entity_type": "location"}]
    pred = line("NER", text, ["person", "location"], label, {"person": ["Alice"], "location": []})
    row = level(evaluate_lines([pred], EvalOptions(mode="strict")), "NER", "entity")
    assert row["by_type"]["person"]["f1"] == 100.0 and row["by_type"]["location"]["f1"] == 0.0
    assert row["macro_type"]["f1"] == 50.0 and row["macro_type"]["n"] == 2
    assert list(row["by_source"]) == ["src"]


def test_scattered_record_lines_give_the_same_result_as_contiguous(tmp_path):
    """Files are scored while streaming; a record whose lines are scattered makes the evaluator hold records."""
    from eval_support import write_jsonl
    from iepile.evaluate import evaluate_file

    lines = ner_file()
    contiguous = evaluate_file(write_jsonl(tmp_path / "a.jsonl", lines), EvalOptions(mode="iepile"))
    scattered = evaluate_file(write_jsonl(tmp_path / "b.jsonl", [lines[0], lines[2], lines[1], lines[3]]),
                              EvalOptions(mode="iepile"))
    assert contiguous["summary"] == scattered["summary"] and contiguous["records"] == scattered["records"] == 2
