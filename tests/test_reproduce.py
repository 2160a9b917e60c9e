"""The recipe runner end to end: recipes/reproduce.yaml with a tiny local model, a few records per dataset, 2 training
steps and 4 test instructions per dataset; then a rerun that reuses every cached step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from tiny_model import build_tiny_model
from iepile.recipes.manifest import RecipeError, load_recipe
from iepile.recipes.results import _pooled
from iepile.recipes.runner import per_dataset, run_recipe, sample_records

REPO = Path(__file__).resolve().parents[1]
DATASETS = ["CoNLL2003", "conll04", "SciERC", "weibo", "SanWen", "DuEE1.0", "PHEE"]

RECIPE = REPO / "recipes" / "reproduce.yaml"
_OVERRIDES = next(s for s in yaml.safe_load(RECIPE.read_text(encoding="utf-8"))["steps"] if s["name"] == "corpus")
TINY = {
    "corpus.clean": False,  # cleaning reads every training sentence; not what this test is about
    "corpus.all": {"max_records": {"train": 6, "test": 6}},
    # DuEE has 65 event types: 4 groups a record instead of 17 (constrained decoding is the slow part here)
    # the recipe's own record caps would win over corpus.all
    "corpus.overrides": {**{name: {k: v for k, v in item.items() if k != "max_records"}
                            for name, item in _OVERRIDES["overrides"].items()}, "DuEE1.0": {"split_num": 17}},
    "train.config.max_steps": 2,
    "train.config.batch_size": 2,
    "train.config.save_steps": 2,
    "train.config.logging_steps": 1,
    "dev.max_instructions": 3,
    "tune.thresholds": [0.05],
    "tune.min_gold": 1,  # every dataset its own threshold (the recipe's per_dataset)
    "tune.options": {"batch_size": 8, "max_new_tokens": 8},
    "test.max_instructions": 4,
    "predict.options": {"batch_size": 8, "max_new_tokens": 8},
    "zeroshot-test.max_instructions": 2,
    "zeroshot-predict.options": {"batch_size": 8, "max_new_tokens": 8},
}
ZERO_SHOT = ["CrossNER_AI", "CrossNER_literature", "CrossNER_music", "CrossNER_politics", "CrossNER_science",
             "FewRel", "RAMS", "WikiEvents"]
ZERO_SHOT_FOLDERS = ("crossner_", "fewrel", "rams", "wikievents")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_reproduce_recipe_end_to_end_and_cached_rerun(tmp_path, data_dir):
    model = build_tiny_model(tmp_path / "tiny", seed=0)
    out = tmp_path / "run"
    kwargs = dict(data=str(data_dir), model=str(model), output=str(out), settings=TINY, progress=False,
                  log=lambda message: None)
    first = run_recipe(RECIPE, **kwargs)
    assert set(first["status"].values()) == {"ran"}
    assert first["results"]["train"]["global_step"] == 2

    # the resolved corpus manifest points at the data root given, hard negatives included
    corpus = yaml.safe_load((out / "corpus" / "corpus.yaml").read_text(encoding="utf-8"))
    assert [d["name"] for d in corpus["datasets"]] == DATASETS
    for dataset in corpus["datasets"]:
        files = [p["file"] if isinstance(p, dict) else p for p in dataset["splits"].values()]
        assert all(Path(p).is_relative_to(data_dir) for p in files)
    hard = {d["name"]: d.get("hard_negative_dataset") for d in corpus["datasets"]}
    assert hard["PHEE"] == "PHEE" and hard["CoNLL2003"] == "CoNLL2003"
    conll04 = next(d for d in corpus["datasets"] if d["name"] == "conll04")
    assert conll04["max_neg_per_pos"] == 1 and conll04["label_map"]["Work_For"] == "work for"

    # the sample: whole records, at most 4 instructions a dataset (at least one record)
    sample = first["results"]["test"]["datasets"]
    assert set(sample) == set(DATASETS)
    for dataset, counts in sample.items():
        assert counts["records"] >= 1
        assert counts["instructions"] <= 4 or counts["records"] == 1

    # the threshold, tuned on the dev sample: greedy and 0.05 scored per dataset, a precision/recall plot each
    tune = first["results"]["tune"]
    assert tune["threshold"] in (None, 0.05)
    assert {(p["dataset"], p["threshold"]) for p in tune["points"]} == {(d, t) for d in DATASETS for t in (None, 0.05)}
    assert all((out / "results" / f"pr-{d}.png").read_bytes().startswith(b"\x89PNG") for d in DATASETS)
    dev_lines = (out / "dev" / "test.json").read_text(encoding="utf-8")
    test_lines = (out / "test" / "test.json").read_text(encoding="utf-8")
    assert not set(dev_lines.splitlines()) & set(test_lines.splitlines())  # tuned on dev, never on test

    # each dataset its own threshold: its best dev F1 (ties: greedy)
    for dataset, chosen in tune["thresholds"].items():
        f1 = {p["threshold"]: p["f1"] for p in tune["points"] if p["dataset"] == dataset}
        assert f1[chosen] == max(f1.values()) and (chosen is None or f1[None] < f1[chosen])

    # 2 systems × 2 decoding modes (and the fine-tuned one at its tuned thresholds), each a finished answer file
    runs = first["results"]["predict"]["runs"]
    per_dataset = any(t is not None for t in tune["thresholds"].values())
    tuned = [("finetuned@dev", False), ("finetuned@dev", True)] if per_dataset else []
    assert sorted((r["system"], r["constrain"]) for r in runs) == sorted(
        [("base", False), ("base", True), ("finetuned", False), ("finetuned", True), *tuned])
    systems = len(runs) // 2
    asked = [json.loads(line)["instruction"] for line in test_lines.splitlines()]
    for run in runs:  # answers in the sample's order, the per-dataset run joined from its parts
        answered = Path(run["file"]).read_text(encoding="utf-8").splitlines()
        assert [json.loads(line)["instruction"] for line in answered] == asked

    results = json.loads((out / "results" / "results.json").read_text(encoding="utf-8"))
    assert results["commit"] and results["machine"]["nproc"] >= 1 and results["machine"]["date"]
    rows = results["rows"]
    for dataset in DATASETS:
        mine = [r for r in rows if r["dataset"] == dataset]
        assert len(mine) == systems * 2 * 2  # systems × constrain × modes
        for row in mine:
            for key in ("f1", "parse_failure_rate", "hallucination_rate"):
                assert isinstance(row[key], float) and 0 <= row[key] <= 100
    # constrained decoding always yields parseable answers
    assert all(r["parse_failure_rate"] == 0 for r in rows if r["constrain"] and r["mode"] == "strict")
    markdown = (out / "results" / "results.md").read_text(encoding="utf-8")
    assert "## Threshold tuned on dev" in markdown and "](pr-PHEE.png)" in markdown
    html = (out / "results" / "results.html").read_text(encoding="utf-8")
    assert "<table>" in html and 'src="pr-PHEE.png"' in html
    for dataset in DATASETS:
        assert f"## {dataset} (" in markdown
    assert "Published" in markdown and "about 93" in markdown and results["commit"] in markdown
    assert "## All datasets pooled" in markdown

    # the zero-shot table: every unseen dataset, both systems, labels in natural language
    zero = json.loads((out / "zeroshot-results" / "results.json").read_text(encoding="utf-8"))
    assert {r["dataset"] for r in zero["rows"]} == set(ZERO_SHOT)
    assert {"base", "finetuned"} <= {r["system"] for r in zero["rows"]} <= {"base", "finetuned", "finetuned@dev"}
    asked = (out / "zeroshot-corpus" / "corpus" / "test" / "CrossNER_AI" / "test.json").read_text(encoding="utf-8")
    assert "programming language" in asked and "programlang" not in asked
    fewrel = (out / "zeroshot-corpus" / "corpus" / "test" / "FewRel" / "test.json").read_text(encoding="utf-8")
    assert "spouse" in fewrel and "P26" not in fewrel

    second = run_recipe(RECIPE, **kwargs)
    assert set(second["status"].values()) == {"cached"}
    assert second["results"]["results"]["rows"] == first["results"]["results"]["rows"]

    # a changed setting is refused instead of silently mixing runs
    with pytest.raises(RecipeError, match="different settings"):
        run_recipe(RECIPE, **{**kwargs, "settings": {**TINY, "test.max_instructions": 5}})

    # --redo reruns a step and the steps that read it (its key is unchanged); --until stops after a step
    redone = run_recipe(RECIPE, **kwargs, redo=("dev",), until="tune")
    assert redone["status"] == {"corpus": "cached", "train": "cached", "dev": "ran", "tune": "ran"}
    assert redone["results"]["tune"]["thresholds"] == tune["thresholds"]
    with pytest.raises(RecipeError, match="no step 'trian'.*corpus, train, dev"):
        run_recipe(RECIPE, **kwargs, until="trian")


def test_sample_is_whole_records_and_seeded(tmp_path):
    path = tmp_path / "test.json"
    lines = [json.dumps({"record_index": i // 3, "instruction": f"{i}"}) + "\n" for i in range(30)]  # 10 records × 3
    path.write_text("".join(lines), encoding="utf-8")
    picked, records = sample_records(path, "x", 42, max_instructions=7, max_records=None)
    assert records == 2 and len(picked) == 6
    assert picked == sample_records(path, "x", 42, max_instructions=7, max_records=None)[0]
    assert [json.loads(line)["record_index"] for line in picked] == sorted(json.loads(l)["record_index"]
                                                                            for l in picked)
    by_records, n = sample_records(path, "x", 42, max_instructions=None, max_records=2)
    assert n == 2 and by_records == picked  # same seeded record order, whichever cap


def test_sample_cap_per_dataset():
    cap = {"DuEE1.0": 100, "*": 300}
    assert per_dataset(cap, "DuEE1.0") == 100 and per_dataset(cap, "PHEE") == 300
    assert per_dataset({"PHEE": 5}, "weibo") is None and per_dataset(64, "weibo") == 64


def test_pooled_f1_sums_tuples_over_datasets():
    def row(dataset, test, tp, pred, gold, mode="strict"):
        return {"dataset": dataset, "test": test, "system": "s", "constrain": False, "mode": mode, "tp": tp,
                "pred": pred, "gold": gold}
    rows = [row("a", "one", 1, 2, 4), row("b", "one", 3, 4, 4), row("a", "all", 0, 0, 4), row("b", "all", 4, 4, 4),
            row("a", "one", 9, 9, 9, mode="iepile")]
    table = _pooled(rows, ["one", "all"])
    assert table[0].startswith("## All datasets pooled") and "a, b" in table[0]
    # one: 2·4 / (6 + 8) = 57.14; all: 2·4 / (4 + 8) = 66.67 (the iepile-mode row is not pooled)
    assert table[4] == "| s | 57.14 (tp 4, pred 6, gold 8) | 66.67 (tp 4, pred 4, gold 8) |"
    assert _pooled([row("a", "one", 1, 1, 1)], ["one"]) == []


@pytest.mark.parametrize("name", ["reproduce", "finding-split", "finding-hard-negatives"])
def test_recipes_load(name):
    recipe = load_recipe(REPO / "recipes" / f"{name}.yaml")
    assert recipe["steps"][-1]["kind"] == "report"


@pytest.mark.parametrize("manifest", sorted((REPO / "recipes").glob("corpus-*.yaml")), ids=lambda p: p.name)
def test_zero_shot_sets_are_never_trained_on(manifest):
    """The four zero-shot sets measure generalisation: no recipe may put them in a training split."""
    doc = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    for dataset in doc["datasets"]:
        for split, source in dataset["splits"].items():
            path = source["file"] if isinstance(source, dict) else source
            if any(folder in str(path) for folder in ZERO_SHOT_FOLDERS):
                assert split != "train", f"{manifest.name}: {dataset['name']} trains on a zero-shot set"


def test_a_threshold_per_dataset_answers_each_dataset_at_its_own_in_the_sample_order(tmp_path):
    """The default model (the tiny random one writes no JSON, so no threshold would show)."""
    import iepile
    from iepile.inference.predict import PredictOptions, predict_file
    from iepile.recipes.runner import Runner

    texts = ["Barack Obama met Angela Merkel in Berlin on Tuesday to discuss the NATO summit.",
             "Apple said Tim Cook will visit the company's new offices in London next month.",
             "The United Nations sent aid to Haiti after the earthquake, said Ban Ki-moon.",
             "Roger Federer beat Rafael Nadal at Wimbledon, the All England Club announced."]
    # all three labels in one instruction: the base model answers those in JSON (one label alone, it echoes)
    lines = iepile.convert([{"text": t, "entity": []} for t in texts], task="NER", language="en", split="test",
                           split_num=3, schema=["location", "organization", "person"])
    for number, line in enumerate(lines):  # two datasets, interleaved
        line["source"] = "low" if number % 2 else "high"
    src = tmp_path / "sample.json"
    src.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    runner = Runner(load_recipe(RECIPE), output=str(tmp_path / "run"), progress=False, log=lambda message: None)
    options = {"batch_size": 4, "max_new_tokens": 64, "dtype": "fp32"}  # bf16 sums differ with the batch
    runner._predict(str(src), tmp_path / "joined.json", None, False, {"low": 0.05, "*": 0.95},
                    {"options": options})
    joined = [json.loads(line) for line in (tmp_path / "joined.json").read_text(encoding="utf-8").splitlines()]
    assert [line["instruction"] for line in joined] == [line["instruction"] for line in lines]

    def alone(threshold):  # every line answered in one run at one threshold
        predict_file(src, tmp_path / f"{threshold}.json", PredictOptions(threshold=threshold, progress=False,
                                                                        **options))
        return [json.loads(line)["output"] for line in
                (tmp_path / f"{threshold}.json").read_text(encoding="utf-8").splitlines()]

    low, high = alone(0.05), alone(0.95)
    assert low != high  # the threshold moves this model's answers, so the check below can tell them apart
    assert [line["output"] for line in joined] == [low[n] if line["source"] == "low" else high[n]
                                                   for n, line in enumerate(lines)]
    with pytest.raises(RecipeError, match="no tuned threshold for dataset 'high'"):
        runner._predict(str(src), tmp_path / "missing.json", None, False, {"low": 0.05}, {"options": options})


def test_every_step_kind_has_a_runner(tmp_path):
    from iepile.recipes.manifest import STEP_KINDS
    from iepile.recipes.runner import Runner

    runner = Runner(load_recipe(RECIPE), output=str(tmp_path), progress=False, log=lambda message: None)
    assert set(runner.step_runners()) == set(STEP_KINDS)
