"""build (manifest → corpus, byte-identical on a re-run) and stats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iepile.data.corpus import build
from iepile.data.manifest import ManifestError, load_manifest
from iepile.data.stats import TokenCounter, file_stats, percentiles

from conftest import DATA_DIR as DATA  # ../shared/data or $IEPILE_DATA; the data_dir fixture fails without it
needs_data = pytest.mark.usefixtures("data_dir")  # fails loudly when the data is missing


def manifest(tmp_path, seed=42):
    text = f"""
seed: {seed}
output: out
clean: {{near_dup: 0.9}}
datasets:
  - name: conll04
    format: spert
    task: RE
    language: en
    splits: {{train: {DATA}/en/re/conll04/dev.json, test: {DATA}/en/re/conll04/test.json}}
    max_records: {{train: 120, test: 40}}
  - name: weibo
    format: conll
    task: NER
    language: zh
    splits: {{train: {DATA}/zh/ner/weibo/dev.conll, test: {DATA}/zh/ner/weibo/test.conll}}
    label_map: {{PER.NAM: 人物, PER.NOM: 人物}}
    max_records: {{train: 100, test: 30}}
    split_num: 6
"""
    path = tmp_path / "corpus.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@needs_data
def test_build_is_reproducible(tmp_path):
    path = manifest(tmp_path)
    combined = build(path, tmp_path / "a")
    build(path, tmp_path / "b")
    a, b = files(tmp_path / "a"), files(tmp_path / "b")
    assert a == b
    assert set(a) == {"train.json", "manifest.json", "test/conll04/test.json", "test/weibo/test.json",
                      "cards/conll04.json", "cards/conll04.md", "cards/weibo.json", "cards/weibo.md"}
    train = [json.loads(line) for line in a["train.json"].decode().splitlines()]
    assert combined["train"]["lines"] == len(train)
    assert {r["source"] for r in train} == {"conll04", "weibo"}
    sources = [r["source"] for r in train]
    assert sources != sorted(sources)  # shuffled across datasets
    weibo = combined["datasets"][1]
    assert weibo["splits"]["train"]["records"] <= 100 and weibo["splits"]["test"]["records"] == 30
    test = [json.loads(line) for line in a["test/weibo/test.json"].decode().splitlines()]
    assert {"id", "label", "instruction"} <= set(test[0])
    card = json.loads(a["cards/weibo.json"])
    labels = card["splits"]["train"]["records"]["label_distribution"]
    assert "人物" in labels and "PER.NAM" not in labels
    assert card["splits"]["train"]["instructions"]["instruction_tokens"]["p50"] > 0
    other = build(manifest(tmp_path, seed=7), tmp_path / "c")
    assert other["train"]["sha256"] != combined["train"]["sha256"]


def test_manifest_errors(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("datasets:\n  - {name: x, format: conll, task: NER, splits: {train: missing.txt}}\n")
    with pytest.raises(ManifestError, match="file not found"):
        load_manifest(path)
    path.write_text("datasets:\n  - {name: x, format: conll, splits: {}, colour: red}\n")
    with pytest.raises(ManifestError, match="unknown key"):
        load_manifest(path)


def test_stats_and_token_counts(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"text": "Ann met Bob", "entity": [{"entity": "Ann", "entity_type": "person"}]}\n'
                    '{"text": "青岛海牛队 won", "entity": []}\n', encoding="utf-8")
    stats = file_stats(path)
    assert stats["kind"] == "records" and stats["records_without_labels"] == 1
    assert stats["label_distribution"] == {"person": 1}
    assert TokenCounter().lengths(["Ann met Bob", "青岛海牛队 won"]) == [3, 6]
    assert percentiles([1, 2, 3, 4, 100])["p50"] == 3


@needs_data
def test_balance_by_answer_tokens_empty_share_and_split_parts(tmp_path):
    path = tmp_path / "balanced.yaml"
    path.write_text(f"""
seed: 3
output: out
clean: false
balance: {{answer_tokens: 3000, max_empty_share: 0.25}}
datasets:
  - name: conll04
    format: spert
    task: RE
    language: en
    splits: {{train: {DATA}/en/re/conll04/dev.json}}
  - name: weibo
    format: conll
    task: NER
    language: zh
    splits: {{train: {{file: {DATA}/zh/ner/weibo/dev.conll, part: [0.0, 0.6]}},
              test: {{file: {DATA}/zh/ner/weibo/dev.conll, part: [0.6, 1.0]}}}}
    max_empty_share: null
""", encoding="utf-8")
    combined = build(path, tmp_path / "a")
    counter = TokenCounter()
    mix = combined["train"]["mix"]
    for name in ("conll04", "weibo"):
        rows = [json.loads(line) for line in (tmp_path / "a" / "train.json").read_text().splitlines()
                if json.loads(line)["source"] == name]
        tokens = sum(counter.lengths([r["output"] for r in rows]))
        assert tokens == mix["per_dataset"][name]["answer_tokens"] <= 3000  # the cap, counted as stated
        report = next(d for d in combined["datasets"] if d["name"] == name)["splits"]["train"]
        assert report["answer_token_cap"]["before"] > 3000 and report["answer_token_cap"]["after"] == tokens
    assert mix["per_dataset"]["conll04"]["empty_share"] <= 0.25
    assert "empty_share_cap" not in next(d for d in combined["datasets"] if d["name"] == "weibo")["splits"]["train"]
    # the two parts of one file: disjoint texts, together every record, whatever the seed
    weibo = next(d for d in combined["datasets"] if d["name"] == "weibo")["splits"]
    train_texts = {json.loads(i)["instruction"].split('"input": ')[-1] for i in
                   (tmp_path / "a" / "train.json").read_text().splitlines() if '"weibo"' in i}
    test_texts = {json.loads(i)["instruction"].split('"input": ')[-1] for i in
                  (tmp_path / "a" / "test" / "weibo" / "test.json").read_text().splitlines()}
    assert not train_texts & test_texts
    assert weibo["train"]["import"]["records_in_part"] + weibo["test"]["import"]["records_in_part"] == 270
    path.write_text(path.read_text().replace("part: [0.6, 1.0]", "part: [0.5, 1.0]"), encoding="utf-8")
    with pytest.raises(ManifestError, match="overlapping parts"):
        load_manifest(path)
