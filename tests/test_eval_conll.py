"""Perfect answers on the real CoNLL-2003 data score exactly 100, although many sentences share a text (the
reference merged them by text hash: 98.19 on test, 21.17 on the training set repeated 8 times)."""

from __future__ import annotations

import pytest

from eval_support import conll_records, perfect_predictions, write_jsonl
from iepile.evaluate import EvalOptions, evaluate_file, evaluate_lines

SCHEMA = ["person", "location", "organisation", "misc"]


@pytest.fixture(scope="module")
def conll(data_dir):
    return data_dir / "en" / "ner" / "conll2003"


@pytest.fixture(scope="module")
def test_records(conll):
    return conll_records(conll / "test.txt")


@pytest.fixture(scope="module")
def test_predictions(test_records, tmp_path_factory):
    lines = perfect_predictions(test_records, "NER", SCHEMA, split_num=6, via_train=True)
    return lines, write_jsonl(tmp_path_factory.mktemp("conll") / "pred.jsonl", lines)


def assert_perfect(result: dict) -> None:
    micro = result["summary"]["NER"]
    assert (micro["precision"], micro["recall"], micro["f1"]) == (100.0, 100.0, 100.0)
    assert micro["tp"] == micro["pred"] == micro["gold"] > 0
    assert result["parse"]["failed"] == 0


@pytest.mark.parametrize("mode", ["iepile", "strict", "normalized"])
def test_conll_test_set_perfect_answers_score_100(test_records, test_predictions, mode):
    records = test_records
    assert len(records) == 3453
    result = evaluate_file(test_predictions[1], EvalOptions(mode=mode))
    assert_perfect(result)
    assert result["records"] == 3453
    gold = sum(len({(e["entity"], e["entity_type"]) for e in record["entity"]}) for record in records)
    assert result["tasks"]["NER"]["levels"]["entity"]["gold"] == gold == 5566  # 5,648 mentions, repeats dropped


def test_conll_train_set_repeated_8_times_scores_100(conll, tmp_path):
    records = conll_records(conll / "train.txt")
    once = perfect_predictions(records, "NER", SCHEMA, split_num=6, via_train=True)
    lines = repeat(once, 8, len(records))
    assert lines[len(once) * 3 + 7] == perfect_predictions(records[7:8] * 4, "NER", SCHEMA, split_num=6)[3] | {
        "record_index": len(records) * 3 + 7}
    result = evaluate_lines(lines, EvalOptions(mode="iepile"))
    assert_perfect(result)
    assert result["records"] == 14041 * 8


def test_without_record_index_duplicate_texts_merge_like_the_reference(test_predictions, tmp_path):
    """The reference's grouping (source + id) is the fallback; it reproduces the reference's 98.19."""
    lines = [{k: v for k, v in line.items() if k != "record_index"} for line in test_predictions[0]]
    result = evaluate_file(write_jsonl(tmp_path / "pred.jsonl", lines), EvalOptions(mode="iepile"))
    assert result["summary"]["NER"]["f1"] == 98.19


def repeat(lines: list[dict], times: int, n_records: int) -> list[dict]:
    """What converting the records repeated ``times`` times gives: the same lines, record_index shifted (test
    conversion has no randomness; each record's lines depend only on the record and its position)."""
    return [line | {"record_index": line["record_index"] + copy * n_records} for copy in range(times) for line in lines]
