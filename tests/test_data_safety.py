"""No command destroys its input or leaves a torn output (issue: data safety). Each case runs the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from iepile.cli import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RUNNER = CliRunner()


def invoke(*args: str):
    return RUNNER.invoke(app, list(args))


@pytest.fixture
def records(tmp_path) -> Path:
    path = tmp_path / "x.json"
    path.write_bytes((EXAMPLES / "en" / "NER" / "train.json").read_bytes())
    return path


def no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize("command", [
    ["clean", "{x}", "{x}"],
    ["import", "{x}", "{x}", "--format", "conll"],
    ["convert", "{x}", "{x}", "--task", "NER", "--language", "en", "--schema", "{schema}", "--split", "train"],
    ["mine-negatives", "{x}", "--predictions", "{x}"],
    ["predict", "{x}", "{x}", "--model", "{x}.no-model"],  # refused before the model: it does not exist
    ["extract", "--file", "{x}", "-o", "{x}", "--schema", '["person"]', "--model", "{x}.no-model"],
])
def test_output_equal_to_input_is_refused_and_the_input_kept(records, command):
    before = records.read_bytes()
    schema = str(EXAMPLES / "en" / "NER" / "schema.json")
    result = invoke(*[part.format(x=records, schema=schema) for part in command])
    assert result.exit_code != 0
    assert "would destroy the input" in result.output
    assert records.read_bytes() == before
    assert no_temporaries(records.parent)


def test_eval_refuses_to_overwrite_the_predictions_and_checks_folders_first(tmp_path):
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"task": "NER", "source": "s", "instruction": "{}", "label": "[]", "output": "{}"})
                    + "\n", encoding="utf-8")
    before = pred.read_bytes()
    assert invoke("eval", str(pred), "--json", str(pred)).exit_code != 0
    assert pred.read_bytes() == before
    result = invoke("eval", str(pred), "--report", str(tmp_path / "missing" / "r.html"))
    assert result.exit_code != 0 and "does not exist" in result.output


def test_a_failed_import_keeps_the_previous_output(tmp_path):
    good = tmp_path / "in.conll"
    good.write_text("Alice B-PER\nworks O\n\n", encoding="utf-8")
    out = tmp_path / "out.json"
    assert invoke("import", str(good), str(out), "--format", "conll").exit_code == 0
    kept = out.read_bytes()
    bad = tmp_path / "bad.conll"
    bad.write_bytes(b"Alice B-PER\n\xff\xfe broken O\n\n")
    result = invoke("import", str(bad), str(out), "--format", "conll")
    assert result.exit_code != 0
    assert out.read_bytes() == kept
    assert no_temporaries(tmp_path)


@pytest.mark.parametrize("command", [
    ["clean", "{x}", "{out}"],
    ["import", "{conll}", "{out}", "--format", "conll"],
    ["convert", "{x}", "{out}", "--task", "NER", "--language", "en", "--schema", "{schema}", "--quiet"],
])
def test_the_data_commands_create_a_missing_output_folder(records, command):
    """import, clean, convert (and build) make the folders of their outputs; the model commands check them first."""
    conll = records.with_name("x.conll")
    conll.write_text("Alice B-PER\nworks O\n\n", encoding="utf-8")
    out = records.parent / "new" / "folder" / "out.json"
    schema = str(EXAMPLES / "en" / "NER" / "schema.json")
    result = invoke(*[part.format(x=records, conll=conll, out=out, schema=schema) for part in command])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8").splitlines()[0])


def test_mine_negatives_keeps_the_previous_dictionary_when_an_input_is_bad(tmp_path):
    """Every input is read before the dictionary is written, and it is written whole or not at all."""
    predictions = tmp_path / "pred.json"
    predictions.write_text(json.dumps({"task": "NER", "label": "[]", "output": "{}"}) + "\n", encoding="utf-8")
    out = tmp_path / "hard.json"
    out.write_text("previous\n", encoding="utf-8")
    reference = tmp_path / "reference.json"
    reference.write_text('{"NER": {"d": {"person": ["people"],}}}\n', encoding="utf-8")
    result = invoke("mine-negatives", str(out), "--predictions", str(predictions), "--reference", str(reference))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{reference}:1: not valid JSON" in " ".join(result.output.split())
    assert out.read_text(encoding="utf-8") == "previous\n" and no_temporaries(tmp_path)
