"""Constrained decoding: the grammar accepts exactly the converter's answer shapes, and a (random) tiny model
under the constraint always writes parseable JSON with the asked keys and strings from the input."""

from __future__ import annotations

import json

import pytest

import iepile
from iepile.constrain import accepts, grammar_for, vocabulary
from iepile.instructions import parse_instruction
from predict_support import tiny_generator, tiny_loaded, tiny_model_dir, tiny_tokenizer  # noqa: F401 (fixtures)

RECORDS = {
    "NER": ({"text": "Alice met Bob in Paris, \"France\".",
             "entity": [{"entity": "Alice", "entity_type": "person"}, {"entity": "Bob", "entity_type": "person"},
                        {"entity": "Paris", "entity_type": "location"}]},
            ["person", "location", "organisation"]),
    "RE": ({"text": "Alice works for ACME in Paris.",
            "relation": [{"head": "Alice", "relation": "works for", "tail": "ACME"}]},
           ["works for", "located in"]),
    "SPO": ({"text": "明治天皇的父亲是孝明天皇。",
             "relation": [{"head": "明治天皇", "relation": "父亲", "tail": "孝明天皇", "head_type": "人物",
                           "tail_type": "人物"}]},
            ["人物_父亲_人物", "人物_母亲_人物"]),
    "EET": ({"text": "公司5月份裁员900余人。",
             "event": [{"event_type": "组织关系-裁员", "event_trigger": "裁员", "arguments": []}]},
            ["组织关系-裁员", "人生-分手"]),
    "EE": ({"text": "公司5月份裁员900余人。",
            "event": [{"event_type": "组织关系-裁员", "event_trigger": "裁员",
                       "arguments": [{"argument": "5月份", "role": "时间"}, {"argument": "900余人", "role": "裁员人数"}]}]},
           {"组织关系-裁员": ["裁员方", "时间", "裁员人数"], "人生-分手": ["分手双方"]}),
    "KG": ({"text": "明治天皇别名睦仁，父母是孝明天皇和英照皇太后。",
            "relation": [{"head": "明治天皇", "relation": "别名", "tail": "睦仁"},
                         {"head": "明治天皇", "relation": "父母", "tail": "孝明天皇"},
                         {"head": "明治天皇", "relation": "父母", "tail": "英照皇太后"}]},
           {"人物": ["别名", "父母", "出生地"]}),
}


@pytest.mark.parametrize("task", sorted(RECORDS))
def test_grammar_accepts_the_converters_answers(task):
    record, labels = RECORDS[task]
    for line in iepile.convert([record], task=task, language="zh", schema=labels, split="train", neg_ratio=-1):
        instruction = parse_instruction(line["instruction"])
        grammar = grammar_for(task, instruction["schema"], instruction["input"])
        assert accepts(grammar, line["output"]), line["output"]


def test_grammar_accepts_eea_argument_maps():
    items = [{"event_type": "裁员", "trigger": ["裁员"], "arguments": ["时间", "人数"]}]
    grammar = grammar_for("EEA", items, "公司5月份裁员900余人。")
    assert accepts(grammar, '{"裁员": [{"时间": "5月份", "人数": "NAN"}]}')
    assert accepts(grammar, '{"裁员": []}')
    assert not accepts(grammar, '{"裁员": [{"时间": "5月份"}]}')


@pytest.mark.parametrize("answer", [
    '{"location": [], "person": []}',                       # keys out of order
    '{"person": []}',                                       # a key missing
    '{"person": [], "location": [], "misc": []}',           # a key not asked
    '{"person": ["Carol"], "location": []}',                # not in the text
    '{"person": ["Alic"], "location": []}',                 # part of a word
    '{"person": ["Alice", "Alice"], "location": []}',       # repeated
    '{"person": [ "Alice"], "location": []}',               # free whitespace
    '{"person": [" Alice"], "location": []}',               # leading blank
    '{"person": [], "location": []} ',                      # anything after the object
    '{"person": ["Paris\\""], "location": []}',             # escape that is not in the text
])
def test_grammar_rejects(answer):
    grammar = grammar_for("NER", ["person", "location"], 'Alice met Bob in Paris, "France".')
    assert not accepts(grammar, answer)


def test_grammar_strings_keep_json_escapes_and_chinese():
    grammar = grammar_for("NER", ["x"], 'He said "北京\\上海".')
    assert accepts(grammar, json.dumps({"x": ['"北京\\上海"', "北京"]}, ensure_ascii=False))
    assert not accepts(grammar, json.dumps({"x": ["京上"]}, ensure_ascii=False))


def test_token_bytes_rebuild_text(tiny_tokenizer):
    vocab = vocabulary(tiny_tokenizer)
    text = '中文 "quotes" {"a": []}\n'
    ids = tiny_tokenizer.encode(text, add_special_tokens=False)
    assert b"".join(vocab.token_bytes[i] for i in ids) == text.encode("utf-8")


TEXTS = ["Alice met Bob in Paris.", "北京是中国的首都，上海是最大的城市。", "x", 'Quote "this" and \\ that.']


@pytest.mark.parametrize("max_new_tokens", [12, 48])
def test_constrained_tiny_model_always_parses(tiny_generator, max_new_tokens):
    from iepile.instructions import build_instruction
    from iepile.predict import answer_instructions

    tiny_generator.constrain, tiny_generator.max_new_tokens = True, max_new_tokens
    schema = ["person", "location", "organisation"]
    instructions = [build_instruction("NER", "en", schema, text) for text in TEXTS]
    answers = answer_instructions(tiny_generator, instructions, ["NER"] * len(TEXTS))
    for text, answer in zip(TEXTS, answers):
        value = json.loads(answer)
        assert list(value) == schema
        for strings in value.values():
            assert all(s and s in text for s in strings)
        assert accepts(grammar_for("NER", schema, text), answer)
    assert any(value for answer in answers for value in json.loads(answer).values())  # not only empty lists


def test_constrained_tiny_model_structured_tasks(tiny_generator):
    from iepile.predict import answer_instructions

    tiny_generator.constrain, tiny_generator.max_new_tokens = True, 40
    lines = []
    for task in ("RE", "EE", "KG"):
        record, labels = RECORDS[task]
        lines += [(task, line) for line in iepile.convert([record], task=task, language="zh", schema=labels,
                                                         split="test")]
    answers = answer_instructions(tiny_generator, [l["instruction"] for _, l in lines], [t for t, _ in lines])
    for (task, line), answer in zip(lines, answers):
        instruction = parse_instruction(line["instruction"])
        assert accepts(grammar_for(task, instruction["schema"], instruction["input"]), answer), answer
