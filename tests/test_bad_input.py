"""Bad input ends as a clear error naming file, line and field, or as a correct result: nothing silently lost or
invented (issue 17). One small fixture per case, written by the test; each case runs the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from iepile.cli import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RUNNER = CliRunner()


def invoke(*args: str):
    result = RUNNER.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output and not (result.exception and not isinstance(result.exception,
                                                                                         SystemExit)), result.output
    return result


def one_line(result) -> str:
    """The output with rich's line wrapping undone (a message is checked as one string)."""
    return " ".join(result.output.split())


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def jsonl(*objects) -> str:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects)


NER_SCHEMA = EXAMPLES / "en" / "NER" / "schema.json"


def convert(src: Path, *options: str, schema: Path = NER_SCHEMA, task: str = "NER"):
    return invoke("convert", src, src.with_name("out.json"), "--task", task, "--language", "en", "--schema", schema,
                  "--quiet", *options)


# -- 1. the convert line decoder -------------------------------------------------------------------------------------

SPLIT_AND_DOUBLE = (
    '{"text": "Alice met Bob.", "entity": [{"entity": "Alice", "entity_type": "person"}\n'  # line 1: cut short
    '{"entity": "Bob", "entity_type": "person"}]}\n'                                        # line 2: its rest
    '{"text": "Carol ran.", "entity": []}, {"text": "Dan ran.", "entity": []}\n'            # line 3: two records
    '{"text": "Eve ran.", "entity": [{"entity": "Eve", "entity_type": "person"}]}\n')       # line 4: good


def test_a_split_record_and_a_double_line_do_not_cancel_out(tmp_path):
    src = write(tmp_path / "in.json", SPLIT_AND_DOUBLE)
    result = convert(src)
    assert result.exit_code == 1
    assert f"{src}:1: malformed JSON" in one_line(result)
    assert not (tmp_path / "out.json").exists()


def test_under_skip_each_bad_line_is_rejected_on_its_own(tmp_path):
    src = write(tmp_path / "in.json", SPLIT_AND_DOUBLE)
    result = convert(src, "--on-error", "skip")
    assert result.exit_code == 0, result.output
    rejects = [json.loads(line) for line in (tmp_path / "out.json.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [1, 2, 3]
    assert "trailing characters" in rejects[2]["reason"]
    stats = json.loads((tmp_path / "out.json.manifest.json").read_text())["statistics"]
    assert (stats["records_in"], stats["converted"], stats["rejected"]) == (4, 1, 3)
    outputs = [json.loads(json.loads(line)["output"]) for line in (tmp_path / "out.json").read_text().splitlines()]
    assert [o["person"] for o in outputs if "person" in o] == [["Eve"]]


def test_under_skip_the_test_split_skips_bad_lines_too(tmp_path):
    src = write(tmp_path / "in.json", SPLIT_AND_DOUBLE)
    result = convert(src, "--on-error", "skip", "--split", "test")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (tmp_path / "out.json").read_text().splitlines()]
    assert {line["record_index"] for line in lines} == {3}


def test_a_bom_opening_the_file_is_not_a_bad_record(tmp_path):
    src = write(tmp_path / "in.json", b"\xef\xbb\xbf" + jsonl({"text": "Eve ran.", "entity": [
        {"entity": "Eve", "entity_type": "person"}]}).encode())
    for split in ("train", "test"):
        assert convert(src, "--split", split).exit_code == 0
        assert "Eve ran." in (tmp_path / "out.json").read_text(encoding="utf-8")


def test_a_number_only_orjson_refuses_is_a_bad_record_of_its_line(tmp_path):
    src = write(tmp_path / "in.json", jsonl({"text": "Eve ran.", "entity": []})
                + '{"text": "Bob ran.", "entity": [], "score": 1e999}\n')
    result = convert(src, "--split", "test", "--on-error", "skip")
    assert result.exit_code == 0, result.output
    rejects = [json.loads(r) for r in (tmp_path / "out.json.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [2] and "malformed JSON" in rejects[0]["reason"]


# -- 2. empty strings and labels -------------------------------------------------------------------------------------

@pytest.mark.parametrize("item, field", [
    ({"entity": "", "entity_type": "person"}, "$.entity[0].entity"),
    ({"entity": " ", "entity_type": "person"}, "$.entity[0].entity"),
    ({"entity": "Eve", "entity_type": ""}, "$.entity[0].entity_type"),
])
def test_an_empty_entity_or_type_is_an_error_naming_the_field(tmp_path, item, field):
    src = write(tmp_path / "in.json", jsonl({"text": "Eve ran.", "entity": []},
                                            {"text": "Eve ran.", "entity": [item]}))
    for schema in (NER_SCHEMA, write(tmp_path / "schema.json", '["person", "location"]\n[]\n{}\n')):
        result = convert(src, schema=schema)
        assert result.exit_code == 1
        assert f"{src}:2: {field}: empty" in one_line(result)


def test_an_empty_text_is_an_error(tmp_path):
    src = write(tmp_path / "in.json", jsonl({"text": "Eve ran.", "entity": []}, {"text": " ", "entity": []}))
    result = convert(src)
    assert result.exit_code == 1 and f"{src}:2: $.text: empty text" in one_line(result)


def test_an_empty_entity_under_skip_is_counted_never_a_target(tmp_path):
    src = write(tmp_path / "in.json", jsonl({"text": "Eve ran.", "entity": [{"entity": "", "entity_type": "person"}]},
                                            {"text": "Eve ran.", "entity": [{"entity": "Eve",
                                                                             "entity_type": "person"}]}))
    assert convert(src, "--on-error", "skip").exit_code == 0
    out = (tmp_path / "out.json").read_text(encoding="utf-8")
    assert '\\"\\"' not in out  # no empty string anywhere in the targets
    rejects = (tmp_path / "out.json.rejects.jsonl").read_text().splitlines()
    assert [json.loads(r)["field"] for r in rejects] == ["$.entity[0].entity"]


def test_empty_relation_parts_are_errors(tmp_path):
    src = write(tmp_path / "in.json", jsonl({"text": "Alice was born in Paris.",
                                             "relation": [{"head": "Alice", "relation": "", "tail": "Paris"}]}))
    result = convert(src, schema=EXAMPLES / "en" / "RE" / "schema.json", task="RE")
    assert result.exit_code == 1 and f"{src}:1: $.relation[0].relation: empty relation" in one_line(result)


@pytest.mark.parametrize("schema_text, where", [
    ('["person", ""]\n[]\n{}\n', ":1: type_list: label 2 is empty"),
    ("entities: {person: null, '': null}\n", ": entities: label 2 is empty"),
])
def test_an_empty_label_in_a_schema_file_is_refused(tmp_path, schema_text, where):
    schema = write(tmp_path / ("schema.yaml" if "entities" in schema_text else "schema.json"), schema_text)
    src = write(tmp_path / "in.json", jsonl({"text": "Eve ran.", "entity": []}))
    result = convert(src, schema=schema)
    assert result.exit_code == 1 and f"{schema}{where}" in one_line(result)
    assert not (tmp_path / "out.json").exists()


# -- 3. readers and schema files -------------------------------------------------------------------------------------

@pytest.mark.parametrize("tag, reason", [("X-foo", "unknown prefix 'X'"), ("B-", "has no entity type")])
def test_a_broken_conll_tag_is_an_error_with_its_line(tmp_path, tag, reason):
    src = write(tmp_path / "in.conll", f"Alice B-PER\nworks O\n\nBob {tag}\nruns O\n\n")
    result = invoke("import", src, tmp_path / "out.json", "--format", "conll")
    assert result.exit_code == 1
    assert f"{src}:4: tag: tag '{tag}'" in one_line(result) and reason in one_line(result)
    skipped = invoke("import", src, tmp_path / "out.json", "--format", "conll", "--on-error", "skip")
    assert skipped.exit_code == 0
    records = [json.loads(line) for line in (tmp_path / "out.json").read_text().splitlines()]
    assert [[e["entity_type"] for e in r["entity"]] for r in records] == [["PER"]]


def test_a_json_file_read_as_conll_is_refused(tmp_path):
    src = write(tmp_path / "in.json", jsonl({"text": "Eve ran.", "entity": [{"entity": "Eve", "entity_type": 5905}]}))
    for on_error in ("fail", "skip"):
        result = invoke("import", src, tmp_path / "out.json", "--format", "conll", "--on-error", on_error)
        assert result.exit_code == 1
        assert f"{src}:1: this is JSON, not CoNLL" in one_line(result)
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("fmt, name, content, message", [
    ("pair-tsv", "in.json", jsonl({"text": "Eve ran.", "entity": []}), ":1: expected 4 tab-separated columns"),
    ("spo-list", "in.conll", "Eve B-PER\nran O\n\n", ":1: malformed JSON"),
    ("brat", "in.json", jsonl({"text": "Eve ran.", "entity": []}), ": brat reads a folder of .ann/.txt pairs or one "
     "file of a pair, not a .json file"),
])
def test_a_file_of_another_format_is_an_error_naming_it(tmp_path, fmt, name, content, message):
    src = write(tmp_path / name, content)
    result = invoke("import", src, tmp_path / "out.json", "--format", fmt)
    assert result.exit_code == 1 and f"{src}{message}" in one_line(result)
    assert not (tmp_path / "out.json").exists()


def test_conll_tokens_that_are_brackets_are_still_read(tmp_path):
    src = write(tmp_path / "in.conll", "[ O\nAlice B-PER\n] O\n\n")
    assert invoke("import", src, tmp_path / "out.json", "--format", "conll").exit_code == 0
    assert json.loads((tmp_path / "out.json").read_text())["entity"][0]["entity"] == "Alice"


@pytest.mark.parametrize("name, text, where", [
    ("schema.yaml", "entities:\n  person: \"a human\n  location: null\n", ":4: malformed YAML"),
    ("schema.yaml", "entities: [person\n", ":2: malformed YAML"),
    ("schema.json", '{\n  "entities": ["person",\n  "location" "date"]\n}\n', ":3: malformed JSON"),
])
def test_a_schema_file_with_a_syntax_error_names_file_and_line(tmp_path, name, text, where):
    schema = write(tmp_path / name, text)
    src = write(tmp_path / "in.json", jsonl({"text": "Eve ran.", "entity": []}))
    result = convert(src, schema=schema)
    assert result.exit_code == 1 and f"{schema}{where}" in one_line(result)


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_schema_with_only_another_tasks_section_is_an_error(tmp_path, split):
    schema = write(tmp_path / "schema.yaml", "relations: [born in]\n")
    src = write(tmp_path / "in.json", jsonl({"text": "Eve ran.", "entity": [{"entity": "Eve", "entity_type": "person"}]}))
    result = convert(src, "--split", split, schema=schema)
    assert result.exit_code == 1
    assert f"{schema}: no 'entities' section, which NER needs (the file has relations)" in one_line(result)
    assert not (tmp_path / "out.json").exists()


def test_a_three_line_schema_without_the_tasks_labels_is_an_error(tmp_path):
    schema = write(tmp_path / "schema.json", '["person"]\n[]\n{}\n')
    src = write(tmp_path / "in.json", jsonl({"text": "Alice was born in Paris.",
                                             "relation": [{"head": "Alice", "relation": "born in", "tail": "Paris"}]}))
    result = convert(src, "--split", "test", schema=schema, task="RE")
    assert result.exit_code == 1 and f"{schema}: the schema holds no RE labels" in one_line(result)


def test_clean_under_skip_counts_and_reports_each_bad_line(tmp_path):
    src = write(tmp_path / "in.json", SPLIT_AND_DOUBLE)
    result = invoke("clean", src, tmp_path / "out.json", "--on-error", "skip")
    assert result.exit_code == 0 and "1 of 4 records kept" in one_line(result)
    assert "3 bad line(s) rejected" in one_line(result)
    report = [json.loads(line) for line in (tmp_path / "out.json.removed.jsonl").read_text().splitlines()]
    assert [(r["line"], r["rule"]) for r in report] == [(1, "rejected"), (2, "rejected"), (3, "rejected")]


def test_a_config_file_with_a_yaml_error_names_file_and_line(tmp_path):
    config = write(tmp_path / "settings.yaml", "neg_ratio: 0.5\nseed: [1\n")
    src = write(tmp_path / "in.json", jsonl({"text": "Eve ran.", "entity": []}))
    result = convert(src, "--config", config)
    assert result.exit_code == 2 and f"error: --config {config}:3: malformed YAML" in one_line(result)


# -- 4. --label-map --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, message", [
    ('{"PER": 5}', "--label-map: 'PER' maps to 5"),
    ('{"PER": ""}', "--label-map: 'PER' maps to ''"),
    ('{"PER": "person"', "--label-map: malformed JSON"),
])
def test_a_bad_label_map_names_the_option(tmp_path, value, message):
    src = write(tmp_path / "in.conll", "Alice B-PER\n\n")
    result = invoke("import", src, tmp_path / "out.json", "--format", "conll", "--label-map", value)
    assert result.exit_code == 1 and message in one_line(result)


def test_a_label_map_file_with_a_yaml_error_names_file_and_line(tmp_path):
    src = write(tmp_path / "in.conll", "Alice B-PER\n\n")
    mapping = write(tmp_path / "map.yaml", "PER: person\nLOC: [location\n")
    result = invoke("import", src, tmp_path / "out.json", "--format", "conll", "--label-map", mapping)
    assert result.exit_code == 1 and f"--label-map {mapping}:3: malformed YAML" in one_line(result)


# -- 5. extract --file and its schema (errors raised before any model is loaded) -----------------------------------

@pytest.mark.parametrize("content, message", [
    ('Alice works.\n{"text": "Bob runs.",\n', ":2: malformed JSON"),
    ('Alice works.\n{"text": 5}\n', ":2: text: expected a string, got int"),
    ('{"body": "Alice"}\n', ":1: text: expected a string, got no text field"),
    (b"Alice works.\nBob \xff runs.\n", ":2: not valid UTF-8"),
])
def test_extract_file_lines_are_checked(tmp_path, content, message):
    texts = write(tmp_path / "texts.txt", content)
    result = invoke("extract", "--model", tmp_path / "no-model", "--schema", '["person"]', "--file", texts)
    assert result.exit_code == 1 and f"{texts}{message}" in one_line(result)


def test_extract_ee_with_a_list_schema_is_a_clear_error(tmp_path):
    result = invoke("extract", "--model", tmp_path / "no-model", "--task", "EE", "--schema", '["Attack"]',
                    "--text", "They attacked.")
    assert result.exit_code == 1 and "an EE schema maps each event type to its roles" in one_line(result)


# -- 6. option values, checked at the command line with the allowed range ------------------------------------------

@pytest.mark.parametrize("args, flag, allowed", [
    (["convert", "{x}", "{out}", "-t", "NER", "-l", "en", "--neg-ratio", "2"], "--neg-ratio", "must be at most 1"),
    (["convert", "{x}", "{out}", "-t", "NER", "-l", "en", "--neg-ratio", "nan"], "--neg-ratio",
     "must be at most 1, got nan"),
    (["convert", "{x}", "{out}", "-t", "NER", "-l", "en", "--neg-ratio", "inf"], "--neg-ratio",
     "must be at most 1, got inf"),
    (["convert", "{x}", "{out}", "-t", "NER", "-l", "en", "--workers", "0"], "--workers", "must be at least 1"),
    (["eval", "{x}", "--bootstrap", "-5"], "--bootstrap", "must be at least 0"),
    (["eval", "{x}", "--examples", "-1"], "--examples", "must be at least 0"),
    (["clean", "{x}", "{out}", "--stopword-ratio", "1.5"], "--stopword-ratio", "must be between 0 and 1"),
    (["mine-negatives", "{out}", "--predictions", "{x}", "--top-k", "0"], "--top-k", "must be at least 1"),
    (["mine-negatives", "{out}", "--predictions", "{x}", "--lexical-weight", "nan"], "--lexical-weight",
     "must be at least 0, got nan"),
])
def test_an_option_out_of_range_is_a_usage_error_with_the_range(tmp_path, args, flag, allowed):
    x = write(tmp_path / "x.json", jsonl({"text": "Eve ran.", "entity": []}))
    result = invoke(*[a.format(x=x, out=tmp_path / "out.json") for a in args])
    assert result.exit_code == 2
    assert f"error: {flag} {allowed}" in one_line(result)
    assert not (tmp_path / "out.json").exists()


def test_neg_ratio_keeps_its_documented_negative_value(tmp_path):
    x = write(tmp_path / "x.json", jsonl({"text": "Eve ran.", "entity": [{"entity": "Eve", "entity_type": "person"}]}))
    assert convert(x, "--neg-ratio", "-1").exit_code == 0


@pytest.mark.parametrize("command", [["import", "{x}", "{out}", "--format", "conll"], ["clean", "{x}", "{out}"]])
def test_on_error_takes_fail_or_skip(tmp_path, command):
    x = write(tmp_path / "x.json", jsonl({"text": "Eve ran.", "entity": []}))
    result = invoke(*[a.format(x=x, out=tmp_path / "out.json") for a in command], "--on-error", "foo")
    assert result.exit_code == 1
    assert "--on-error must be" in one_line(result) and "got 'foo'" in one_line(result)


@pytest.mark.parametrize("command, allowed", [
    (["convert", "{x}", "{out}", "-t", "NER", "--schema", str(NER_SCHEMA)], "en, zh"),
    (["import", "{x}", "{out}", "--format", "conll"], "auto, en, zh"),
])
def test_language_must_be_a_supported_one(tmp_path, command, allowed):
    x = write(tmp_path / "x.json", jsonl({"text": "Eve ran.", "entity": []}))
    result = invoke(*[a.format(x=x, out=tmp_path / "out.json") for a in command], "--language", "fr")
    assert result.exit_code == 1 and f"--language must be one of {allowed}, got 'fr'" in one_line(result)
    assert not (tmp_path / "out.json").exists()


def test_predict_device_is_checked_before_the_model(tmp_path):
    x = write(tmp_path / "x.json", jsonl({"instruction": "{}"}))
    result = invoke("predict", x, tmp_path / "out.json", "--model", tmp_path / "no-model", "--device", "foo")
    assert result.exit_code == 1 and "--device must be cpu, cuda, cuda:N" in one_line(result)


# -- 7. eval: nothing drops out of the denominator unnoticed ---------------------------------------------------------

def prediction(index: int, entity: str, output=None, task: str = "NER", label=None, **extra) -> dict:
    """A prediction line as convert + predict write it: one record, one person, answered right unless ``output``."""
    from iepile.instructions import build_instruction

    text = f"{entity} ran."
    gold = [{"entity": entity, "entity_type": "person"}] if label is None else label
    return {"id": str(index), "task": task, "source": "s", "instruction": build_instruction("NER", "en", ["person"], text),
            "label": gold if isinstance(gold, str) else json.dumps(gold), "record_index": index,
            "output": json.dumps(output if output is not None else {"person": [entity]}), **extra}


def eval_json(tmp_path: Path, content: str | bytes, *options: str):
    pred = write(tmp_path / "pred.json", content)
    result = invoke("eval", pred, "--mode", "strict", "--json", tmp_path / "result.json", *options)
    scores = json.loads((tmp_path / "result.json").read_text()) if result.exit_code == 0 else None
    return pred, result, scores


def micro(scores: dict) -> tuple:
    row = scores["summary"]["NER"]
    return row["tp"], row["pred"], row["gold"], round(row["f1"], 4)


def test_a_malformed_prediction_line_is_a_parse_failure_its_gold_kept(tmp_path):
    good = json.dumps(prediction(0, "Alice")) + "\n"
    cut = json.dumps(prediction(1, "Bob"))[:-12] + "\n"  # the line cut short inside its output
    _, result, scores = eval_json(tmp_path, good + cut)
    assert result.exit_code == 0, result.output
    assert micro(scores) == (1, 1, 2, round(100 * 2 * 1.0 * 0.5 / 1.5, 4))  # P 1, R 1/2: F1 2/3, not 100 %
    assert scores["parse"]["failed"] == 1 and scores["bad_lines"] == [2]


def test_an_unreadable_line_and_a_missing_record_fail_the_run(tmp_path):
    lines = json.dumps(prediction(0, "Alice")) + "\nx\n" + json.dumps(prediction(2, "Carol")) + "\n"
    pred, result, _ = eval_json(tmp_path, lines)
    assert result.exit_code == 1
    assert f"{pred}:2: not a JSON object" in one_line(result)
    assert "no line of record_index 1 (1 record(s) missing)" in one_line(result) and "--allow-missing" in one_line(result)
    assert not (tmp_path / "result.json").exists()
    _, allowed, scores = eval_json(tmp_path, lines, "--allow-missing")
    assert allowed.exit_code == 0 and "warning:" in allowed.output
    assert micro(scores) == (2, 2, 2, 100.0)
    assert scores["problems"]["kinds"] == {"missing_records": 1, "unreadable_lines": 1}


def test_a_gap_in_record_index_fails_the_run(tmp_path):
    lines = "".join(json.dumps(prediction(i, name)) + "\n" for i, name in ((0, "Alice"), (3, "Dan")))
    pred, result, _ = eval_json(tmp_path, lines)
    assert result.exit_code == 1
    assert f"{pred}: NER s: no line of record_index 1-2 (2 record(s) missing)" in one_line(result)
    _, allowed, scores = eval_json(tmp_path, lines, "--allow-missing")
    assert allowed.exit_code == 0 and scores["problems"]["kinds"] == {"missing_records": 2}


@pytest.mark.parametrize("label, reason", [
    ('[{"entity": "Bob"', "label: not valid JSON"),
    ('{"entity": "Bob"}', "label: expected a JSON list of annotations, got dict"),
    ([{"entity": "Bob"}], "label: annotation 0: no 'entity_type' string"),
])
def test_a_bad_gold_label_is_reported_and_fails_the_run(tmp_path, label, reason):
    lines = json.dumps(prediction(0, "Alice")) + "\n" + json.dumps(prediction(1, "Bob", label=label)) + "\n"
    pred, result, _ = eval_json(tmp_path, lines)
    assert result.exit_code == 1 and f"{pred}:2: {reason}" in one_line(result)
    _, allowed, scores = eval_json(tmp_path, lines, "--allow-missing")
    assert allowed.exit_code == 0 and scores["problems"]["kinds"] == {"bad_gold": 1}


def test_eval_task_re_on_ner_lines_is_an_error(tmp_path):
    lines = json.dumps(prediction(0, "Alice")) + "\n"
    pred, result, _ = eval_json(tmp_path, lines, "--task", "RE")
    assert result.exit_code == 1
    assert f"{pred}:1: task: the line is a NER line, but --task RE was given" in one_line(result)
    untyped = {k: v for k, v in prediction(0, "Alice").items() if k != "task"}
    pred, result, _ = eval_json(tmp_path, json.dumps(untyped) + "\n", "--task", "RE")
    assert result.exit_code == 1 and f"{pred}:1: label: annotation 0: no 'head', 'relation', 'tail' string" in \
        one_line(result)


def test_a_utf8_bom_on_a_line_keeps_its_record(tmp_path):
    lines = [json.dumps(prediction(i, name)).encode() + b"\n" for i, name in enumerate(("Alice", "Bob"))]
    _, plain, expected = eval_json(tmp_path, b"".join(lines))
    _, result, scores = eval_json(tmp_path, b"\xef\xbb\xbf" + lines[0] + b"\xef\xbb\xbf" + lines[1])
    assert result.exit_code == plain.exit_code == 0, result.output
    assert micro(scores) == micro(expected) == (2, 2, 2, 100.0)
    assert scores["records"] == 2 and scores["bad_lines"] == []


# -- 8. mine-negatives: a gold annotation it cannot read never becomes a confusion -----------------------------------

def test_mine_negatives_leaves_out_unreadable_gold_and_says_so(tmp_path):
    from iepile.instructions import build_instruction

    instruction = build_instruction("NER", "en", ["person", "location"], "Paris ran.")
    lines = [{"task": "NER", "instruction": instruction, "output": json.dumps({"person": ["Paris"], "location": []}),
              "label": json.dumps(gold)} for gold in ([{"entity": "Paris", "entity_type": "location"}],
                                                      [{"entity": "Paris"}])]  # the second has no type
    predictions = write(tmp_path / "pred.json", jsonl(*lines))
    result = invoke("mine-negatives", tmp_path / "hard.json", "--predictions", predictions)
    assert result.exit_code == 0, result.output
    assert "'lines without a readable label or output': 1" in one_line(result)
    assert json.loads((tmp_path / "hard.json").read_text(encoding="utf-8")) == {"location": ["person"]}
