"""mine-negatives: (a) label-name similarity against the reference's hand-made dictionary, (b) confusions."""

from __future__ import annotations

import json

import pytest

from iepile.data import negatives as nm

from conftest import DATA_DIR as DATA  # ../shared/data or $IEPILE_DATA; the data_dir fixture fails without it
HARD_DICT = DATA / "iepile-samples" / "hard_negative" / "hard_dict.json"


@pytest.fixture(scope="module")
def encoder():
    return nm.LabelEncoder()


def test_humanize():
    assert nm.humanize("OrgBased_In") == "org based in"
    assert nm.humanize("人物_毕业院校_学校") == "人物 毕业院校 学校"
    assert nm.humanize("Treatment.Drug") == "treatment drug"


def test_similar_labels(encoder):
    mined = nm.mine_similar(["person", "people", "location", "place", "organization"], encoder, top_k=1)
    assert mined["location"] == ["place"] and mined["person"] == ["people"]
    assert nm.mine_similar(["person", "location"], encoder, top_k=3, threshold=0.99) == {"person": [],
                                                                                          "location": []}


@pytest.mark.usefixtures("data_dir")
def test_recall_of_the_reference_dictionary(encoder, tmp_path):
    reference = json.loads(HARD_DICT.read_text(encoding="utf-8"))
    mined = nm.mine_like(reference, encoder, top_k=5, lexical_weight=1.0)
    result = nm.recall(reference, mined)
    baseline = nm.random_baseline(reference, 5)
    print(f"recall@5 {result['recall']:.3f} ({result['recovered']}/{result['pairs']}), random {baseline:.3f}, "
          f"per task { {t: round(v['recall'], 3) for t, v in result['per_task'].items()} }")
    pairs = {(task, name, key, value) for task in ("NER", "RE", "SPO", "EE")  # EET and EEA copy EE
             for name, d in reference[task].items() for key, values in d.items() for value in values if value != key}
    assert result["pairs"] == len(pairs) == 4190
    assert result["recall"] > 0.35 and result["recall"] > 1.8 * baseline
    # the nested output is what convert --hard-negatives reads
    from iepile.convert.sampling import load_hard_negatives

    path = tmp_path / "mined.json"
    path.write_text(json.dumps(mined, ensure_ascii=False), encoding="utf-8")
    flat = load_hard_negatives(path, "NER", "CoNLL2003")
    assert set(flat) == set(nm.dataset_labels(reference["NER"]["CoNLL2003"]))


def test_confusions_from_predictions(tmp_path):
    rows = [
        {"task": "NER", "label": json.dumps([{"entity": "Paris", "entity_type": "location"},
                                             {"entity": "Acme", "entity_type": "organization"}]),
         "output": json.dumps({"location": [], "person": ["Paris"], "organization": ["Acme"]})},
        {"task": "NER", "label": json.dumps([{"entity": "Rome", "entity_type": "location"}]),
         "output": '{"person": ["Rome"], "organization": ["Rome"]'},  # truncated answer, repaired
        {"task": "RE", "label": json.dumps([{"head": "Ann", "relation": "Live_In", "tail": "Rome"}]),
         "output": json.dumps({"Work_For": [{"subject": "Ann", "object": "Rome"}]})},
        {"task": "NER", "label": "[]", "output": "not json at all {"},
    ]
    path = tmp_path / "pred.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    confusions, info = nm.count_confusions(path)
    assert confusions == {("location", "person"): 2, ("location", "organization"): 1, ("Live_In", "Work_For"): 1}
    assert nm.confusion_dictionary(confusions, top_k=5) == {"Live_In": ["Work_For"],
                                                            "location": ["person", "organization"]}
    assert nm.confusion_dictionary(confusions, min_count=2) == {"location": ["person"]}
    merged = nm.merge_dictionaries({"location": ["person"]}, {"location": ["place", "person"], "x": ["y"]}, 2)
    assert merged == {"location": ["person", "place"], "x": ["y"]}


def test_recall_flat():
    assert nm.recall({"a": ["b", "c"], "b": ["b"]}, {"a": ["c"]}, nested=False) == {"pairs": 2, "recovered": 1,
                                                                                     "recall": 0.5}


def test_confusions_count_lines_of_an_unknown_task(tmp_path):
    path = tmp_path / "pred.jsonl"
    path.write_text(json.dumps({"task": "XYZ", "label": "[]", "output": "{}"}) + "\n", encoding="utf-8")
    confusions, info = nm.count_confusions(path)
    assert not confusions and info == {"lines without a known task": 1}
