"""Constrained decoding: the grammar accepts exactly the converter's answer shapes, and a (random) tiny model
under the constraint always writes parseable JSON with the asked keys and strings from the input."""

from __future__ import annotations

import json

import pytest

import iepile
from iepile.inference.constrain import accepts, grammar_for, vocabulary
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
    from iepile.inference.generators import answer_instructions

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
    if max_new_tokens >= 48:  # 12 tokens only fit the empty answer (the budget counts tokens, not bytes)
        assert any(value for answer in answers for value in json.loads(answer).values())  # not only empty lists


def test_constrained_tiny_model_structured_tasks(tiny_generator):
    from iepile.inference.generators import answer_instructions

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


# -- what no IE span looks like -------------------------------------------------------------------------------------

def _ner(strings: list, text: str, **options) -> bool:
    """Whether the NER grammar (one type "x") accepts ``strings`` as the extracted list."""
    return accepts(grammar_for("NER", ["x"], text, **options), json.dumps({"x": strings}, ensure_ascii=False))


SENTENCES = "Alice met Bob in Paris, \"France\". Then U.S. Open ( tennis ) was held in New York . Mr. Smith met " \
            "John F. Kennedy! Acme Inc. said hi.\tThe end"


@pytest.mark.parametrize("string", [
    "Alice", "Bob in Paris", '"France"', "France", "U.S.", "U.S. Open", "Mr. Smith",
    "John F. Kennedy!", "John F. Kennedy", "Acme Inc.", "Acme Inc. said hi", "New York", "F", "Kennedy!",
    "Open ( tennis", "said hi",
])
def test_span_rules_accept_entity_like_strings(string):
    assert _ner([string], SENTENCES), string


@pytest.mark.parametrize("string", [
    ".", ",", "(", "( tennis", "tennis )", "New York .", "Paris,", ", \"France\"", "--",   # punctuation-only edges
    "Alice ", "Alice met ",                                                                 # trailing whitespace
    "France\". Then", "Paris, \"France\". Then U.S.", "York . Mr. Smith", "Kennedy! Acme",  # crosses a sentence end
    "said hi.\tThe", "Paris, \"France\".", "Kennedy! Acme Inc. said hi.",                  # ends a sentence
    "S. Open", "S", ".S", "S.", "U.S. Open ( tennis )",                                     # ... more edges
])
def test_span_rules_reject_junk(string):
    assert not _ner([string], SENTENCES), string


def test_span_rules_chinese():
    text = "北京是中国的首都，上海是最大的城市。明治天皇别名睦仁！父母是孝明天皇。"
    for good in ("北京", "首都，上海", "明治天皇别名睦仁", "京"):
        assert _ner([good], text), good
    for bad in ("。", "，", "首都，", "，上海", "城市。明治", "城市。", "睦仁！", "睦仁！父母"):
        assert not _ner([bad], text), bad


def test_span_rules_length_caps():
    words = " ".join(f"w{i}" for i in range(12))            # 12 short words, 47 characters
    longer = " ".join(f"word{i:02d}" for i in range(12))   # 12 words, 83 characters
    assert _ner([words], words)                           # more than 8 words, but only 47 characters
    assert _ner([" ".join(longer.split()[:8])], longer)   # 8 words, 55 characters
    assert not _ner([" ".join(longer.split()[:9])], longer)  # 9 words and 62 characters
    assert not _ner([longer], longer)
    single = "x" * 100                                       # one word, but over twice max_chars
    assert _ner(["x" * 100], single + " " + single) is False
    chinese = "北京" * 40
    assert _ner([chinese[:48]], chinese) and not _ner([chinese[:49]], chinese)
    # the caps are options
    assert _ner([chinese[:49]], chinese, max_chars=60)
    assert not _ner([" ".join(longer.split()[:3])], longer, max_chars=10, max_words=2)
    assert _ner([" ".join(longer.split()[:3])], longer, max_chars=10, max_words=3)


def test_list_length_cap():
    text = "a b c d e f g h i j"
    assert _ner(list("abcdefgh"), text)
    assert not _ner(list("abcdefghi"), text)
    assert _ner(list("abc"), text, max_items=3) and not _ner(list("abcd"), text, max_items=3)
    grammar = grammar_for("RE", ["r"], text, max_items=2)
    pair = {"subject": "a", "object": "b"}
    assert accepts(grammar, json.dumps({"r": [pair, pair]}))
    assert not accepts(grammar, json.dumps({"r": [pair, pair, pair]}))


def test_no_repeats_even_when_nothing_else_fits():
    assert _ner(["x"], "x")
    assert not _ner(["x", "x"], "x")
    assert not _ner(["Alice", "Alice"], "Alice .")


def test_whole_input_when_no_span_passes_and_blank_inputs():
    assert _ner(["..."], "...") and not _ner([".."], "...")
    assert _ner(["- -"], " - - ")
    for blank in ("", "   "):
        assert _ner([], blank) and not _ner([""], blank) and not _ner([" "], blank)
        assert accepts(grammar_for("RE", ["r"], blank), '{"r": []}')
        assert accepts(grammar_for("KG", [{"entity_type": "t", "attributes": ["a"]}], blank), '{"t": {}}')
        ee = grammar_for("EE", [{"event_type": "e", "arguments": ["r"]}], blank)
        assert accepts(ee, '{"e": [{"trigger": "NAN", "arguments": {"r": "NAN"}}]}')


GRAMMARS = [("NER", ["a", "b"]), ("RE", ["r"]), ("EE", [{"event_type": "e", "arguments": ["r1", "r2"]}]),
            ("KG", [{"entity_type": "t", "attributes": ["a", "b"]}])]
WALK_TEXTS = ["Mr. Smith met Bob in Paris . Then U.S. Open , \"quoted\" \\ here !", "北京是首都，上海。明治天皇！", "x", "...", ""]


@pytest.mark.parametrize("task, schema", GRAMMARS)
def test_budget_is_exact_and_walks_never_dead_end(task, schema):
    """From every state a random walk reaches, some byte brings the answer exactly one byte closer to closing (so
    the decoder's "room to close" check can always be met) and the cheapest path closes in ``bytes_to_close``."""
    import random

    from iepile.inference.constrain import advance, bytes_to_close

    rng = random.Random(7)
    for text in WALK_TEXTS:
        grammar = grammar_for(task, schema, text, max_items=3)
        for walk in range(3):
            stack, written = ((grammar, grammar.start()),), b""
            while stack != ():
                left = bytes_to_close(stack)
                options = {byte: after for byte in range(256) if (after := advance(stack, byte)) is not None}
                closer = [byte for byte, after in options.items()
                          if (after == () and left == 1) or (after != () and bytes_to_close(after) == left - 1)]
                assert closer, (text, written)
                byte = rng.choice(closer) if walk == 0 or rng.random() < 0.3 else rng.choice(list(options))
                stack, written = options[byte], written + bytes((byte,))
                assert len(written) < 4000
            assert accepts(grammar, written.decode("utf-8"))
            json.loads(written)


def _looks_like_a_span(string: str) -> bool:
    import re

    return (any(char.isalnum() for char in string) and string == string.strip() and "\n" not in string
            and not re.search(r"[.!?]\s+\S|[。！？]", string))


def test_constrained_tiny_model_writes_no_junk_strings(tiny_generator):
    from iepile.instructions import build_instruction
    from iepile.inference.generators import answer_instructions

    texts = ["... , ; -- ! ? ( ) Alice met Bob . Then Carol left ! \" . , . , .", ". , : ; x . , : ;",
             "「」，。、！？北京。上海？，，。"]
    schema = ["person", "location"]
    instructions = [build_instruction("NER", "en", schema, text) for text in texts]
    tiny_generator.constrain, tiny_generator.max_new_tokens = True, 40
    answers = answer_instructions(tiny_generator, instructions, ["NER"] * len(texts))
    strings = []
    for text, answer in zip(texts, answers):
        value = json.loads(answer)
        assert list(value) == schema
        for found in value.values():
            assert len(found) <= 8 and len(set(found)) == len(found)
            strings += found
            assert all(s in text and _looks_like_a_span(s) for s in found), answer
    assert strings, answers  # the model did extract something


def test_a_cjk_span_may_start_right_after_ascii_digits():
    """Found by the task contract test: "击败" of "85比70击败了" was not a possible trigger (the digits before it
    counted as an ASCII token the span would start inside)."""
    grammar = grammar_for("EET", ["竞赛行为-胜负"], "中国男篮以85比70击败了伊朗队。")
    assert accepts(grammar, '{"竞赛行为-胜负": ["击败"]}')
    assert not accepts(grammar_for("NER", ["x"], "AL-AIN won"), '{"x": ["AIN"]}')


def test_the_lower_case_word_after_a_hyphen_may_start_a_span():
    """Found in the 2026-12-03 PHEE run: "induced" of "cyclosporine A-induced" (a gold trigger) could not be copied,
    so the constrained model wrote "in" (another word of the text) where it wrote "induced" unconstrained. A
    capitalised part stays inside its token ("AIN" of "AL-AIN")."""
    text = "Nephrotoxicity is a cyclosporine A-induced and dose-related effect in AL-AIN patients."
    grammar = grammar_for("EET", ["adverse event"], text)
    assert accepts(grammar, '{"adverse event": ["induced"]}')
    assert accepts(grammar, '{"adverse event": ["related"]}')
    assert accepts(grammar, '{"adverse event": ["A-induced"]}')
    assert not accepts(grammar, '{"adverse event": ["AIN"]}')
    assert not accepts(grammar, '{"adverse event": ["nduced"]}')


def test_budget_counts_the_closing_in_tokens_not_bytes(tiny_tokenizer):
    """An event with 16 roles closes in about 350 bytes of ``"role": "NAN"``, far fewer tokens: the budget check
    tokenizes the shortest completion, so a 320-token budget still lets the answer name its arguments (counted in
    bytes, the 2026-12-02 run could only write every role as NAN)."""
    from iepile.inference.constrain import ConstrainedLogitsProcessor, JsonConstraint, advance_bytes, bytes_to_close
    from iepile.inference.constrain.grammar import shortest_completion

    from iepile.instructions import build_instruction

    roles = [f"Subject.Role{i:02d}" for i in range(16)]
    text = "The patient developed a severe rash after taking aspirin for two weeks."
    schema = [{"event_type": "Adverse_event", "trigger": ["developed"], "arguments": roles}]
    parsed = parse_instruction(build_instruction("EEA", "en", schema, text))
    grammar = grammar_for("EEA", parsed["schema"], parsed["input"])
    processor = ConstrainedLogitsProcessor([JsonConstraint(grammar)], tiny_tokenizer, [0], max_new_tokens=320)
    answer = {"Adverse_event": [{role: "aspirin" if role == roles[0] else "NAN" for role in roles}]}
    written = json.dumps(answer).encode("utf-8")
    widest = (0, b"")
    for end in range(1, len(written)):
        stack = advance_bytes(((grammar, grammar.start()),), written[:end])
        completion = shortest_completion(stack)
        assert len(completion) == bytes_to_close(stack)
        assert accepts(grammar, (written[:end] + completion).decode("utf-8"))
        assert processor.tokens_to_close(stack) <= bytes_to_close(stack)
        widest = max(widest, (bytes_to_close(stack), written[:end]))
    stack = advance_bytes(((grammar, grammar.start()),), widest[1])
    assert widest[0] > 320 - 6  # counted in bytes, this state would not fit a 320-token budget
    assert processor.fits(stack, 320 - 6) and processor.tokens_to_close(stack) < widest[0] / 2
