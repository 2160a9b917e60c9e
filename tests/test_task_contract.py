"""The Task contract, for every task and language of the bundled examples: convert → gold answer (the task's own
``render_output`` for each test instruction's schema items) → the task's constrained grammar accepts it → the
answer parses → the scorer gives 100. A new task passes this file or it is not wired in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import iepile
from iepile.inference.constrain import accepts, grammar_for
from iepile.evaluate import EvalOptions, evaluate_lines
from iepile.inference.answers import parse_answer
from iepile.instructions import parse_instruction
from iepile.records import Line, decode_record
from iepile.schema import load_schema
from iepile.tasks import TASKS

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CASES = [(task, language) for task in TASKS for language in ("en", "zh")]


@pytest.mark.parametrize("task,language", CASES, ids=[f"{t}-{lang}" for t, lang in CASES])
def test_gold_answers_pass_grammar_parse_and_score_100(task, language):
    folder = EXAMPLES / language / task
    schema = load_schema(folder / "schema.json")
    raw = [line for line in (folder / "test.json").read_text(encoding="utf-8").splitlines() if line.strip()]
    records = [json.loads(line) for line in raw]
    lines = iepile.convert(records, task=task, language=language, schema=schema, split="test", source="contract")
    assert lines, "the examples convert to test instructions"
    impl = TASKS[task]
    predictions = []
    for line in lines:
        index = line["record_index"]
        record = decode_record(Line(index, index + 1, raw[index].encode("utf-8")), impl.record_type, str(folder))
        instruction = parse_instruction(line["instruction"])
        answer = json.dumps(impl.render_output(record, instruction["schema"], schema), ensure_ascii=False)
        assert accepts(grammar_for(task, instruction["schema"], instruction["input"]), answer), answer
        assert parse_answer(answer).value == json.loads(answer)
        predictions.append({**line, "output": answer})
    result = evaluate_lines(predictions, EvalOptions(mode="strict"))
    scored = result["tasks"][task]
    assert scored["micro"]["f1"] == 100.0, scored["micro"]
    assert scored["micro"]["gold"] > 0
