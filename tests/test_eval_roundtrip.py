"""Round trip for every task: the training targets of the same records, given as answers, score exactly 100 at every
level, in every mode; on the IEPile samples and on real datasets from ../shared/data."""

from __future__ import annotations

import pytest

from eval_support import duee_records, duee_schema, kg_schema, perfect_predictions, pfn_records, spo_labels
from iepile.evaluate import EvalOptions, evaluate_lines
from iepile.schema import load_schema

TASKS = ["NER", "RE", "SPO", "EE", "EET", "EEA", "KG"]
MODES = ["iepile", "strict", "normalized"]


def assert_all_levels_perfect(result: dict, task: str) -> None:
    assert result["parse"]["failed"] == 0
    levels = result["tasks"][task]["levels"]
    assert levels, "nothing was scored"
    for level, row in levels.items():
        assert (row["precision"], row["recall"], row["f1"]) == (100.0, 100.0, 100.0), (level, row)
        assert row["tp"] == row["pred"] == row["gold"] > 0, (level, row)
        assert all(v == 0 for k, v in row["errors"].items() if k != "correct"), row["errors"]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("mode", MODES)
def test_iepile_samples_round_trip(data_dir, task, mode):
    folder = data_dir / "iepile-samples" / task
    import json

    records = [json.loads(line) for line in (folder / "sample.json").read_text(encoding="utf-8").splitlines()
               if line.strip()]
    lines = perfect_predictions(records, task, load_schema(str(folder / "schema.json")), language="zh")
    assert_all_levels_perfect(evaluate_lines(lines, EvalOptions(mode=mode)), task)


@pytest.fixture(scope="module")
def conll04(data_dir):
    return pfn_records(data_dir / "en" / "re" / "conll04" / "test.json")


@pytest.fixture(scope="module")
def duee(data_dir):
    folder = data_dir / "zh" / "ee" / "duee"
    return duee_records(folder / "dev.json"), duee_schema(folder / "event_schema.json")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("task", ["RE", "SPO", "KG"])
def test_conll04_round_trip(conll04, task, mode):
    schema = {"RE": sorted({r["relation"] for rec in conll04 for r in rec["relation"]}), "SPO": spo_labels(conll04),
              "KG": kg_schema(conll04)}[task]
    lines = perfect_predictions(conll04, task, schema)
    assert_all_levels_perfect(evaluate_lines(lines, EvalOptions(mode=mode)), task)


@pytest.fixture(scope="module")
def duee_lines(duee):
    """Converted once per task, scored in every mode."""
    records, schema = duee
    cache: dict[str, list[dict]] = {}
    return lambda task: cache.setdefault(task, perfect_predictions(records, task, schema, language="zh")) \
        if task not in cache else cache[task]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("task", ["EE", "EET", "EEA"])
def test_duee_round_trip(duee_lines, task, mode):
    assert_all_levels_perfect(evaluate_lines(duee_lines(task), EvalOptions(mode=mode)), task)


@pytest.mark.parametrize("task", ["NER", "RE", "SPO", "EE", "EET", "EEA"])
def test_train_conversion_gives_the_same_answers_as_render_output(data_dir, task):
    """The two ways of building perfect answers agree (KG differs: training asks only the record's entity types)."""
    import json

    folder = data_dir / "iepile-samples" / task
    records = [json.loads(line) for line in (folder / "sample.json").read_text(encoding="utf-8").splitlines()
               if line.strip()]
    schema = load_schema(str(folder / "schema.json"))
    rendered = perfect_predictions(records, task, schema, language="zh")
    trained = perfect_predictions(records, task, schema, language="zh", via_train=True)
    assert [line["output"] for line in rendered] == [line["output"] for line in trained]
