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
