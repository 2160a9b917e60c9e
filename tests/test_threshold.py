"""The recall knob (`--threshold`): decision points found in real answers, the rule applied to real logits, and the
knob moving the real default model's answers in the promised direction, with and without constrained decoding."""

from __future__ import annotations

import json

import pytest

from iepile.evaluate.curves import best_threshold, best_thresholds_per_dataset
from iepile.inference.threshold import (CLOSE, CLOSE_OBJECT, EMPTY, MORE, MORE_OBJECT, OPEN, QUOTED, JsonCursor,
                              ListDecisionProcessor, check_threshold, token_class)

from predict_support import tiny_loaded, tiny_model_dir, tiny_tokenizer  # noqa: F401 (fixtures)

NER_ANSWER = '{"person": ["John Smith", "Mary"], "location": []}'
RE_ANSWER = '{"Work_For": [{"subject": "Alice", "object": "ACME"}, {"subject": "Bob", "object": "X"}], "Kill": []}'
ZH_ANSWER = '{"人物": ["张三"], "地点": []}'


@pytest.mark.parametrize("data, expected", [
    (b" []", EMPTY), (b" [],", EMPTY), (b"[]}", EMPTY), (b' ["', OPEN), (b" [{", OPEN), (b"]", CLOSE),
    (b"],", CLOSE), (b", ", MORE), (b'"]', CLOSE + QUOTED), (b'"],', CLOSE + QUOTED), (b'",', MORE + QUOTED),
    (b'"},', MORE_OBJECT + QUOTED), (b'"}]', CLOSE_OBJECT + QUOTED), (b"}]", CLOSE_OBJECT), (b"},", MORE_OBJECT),
    (b"Smith", None), (b'"', None), (b'":', None), (b"}", None),
])
def test_token_classes(data, expected):
    assert token_class(data) == expected


def _decisions_along(answer: str, tokenizer) -> list[tuple[str, tuple | None]]:
    """(next token, decision before it) for every token of a real tokenised answer."""
    from iepile.inference.constrain import vocabulary

    token_bytes = vocabulary(tokenizer).token_bytes
    cursor, out = JsonCursor(), []
    for token_id in tokenizer(answer, add_special_tokens=False)["input_ids"]:
        out.append((token_bytes[token_id], cursor.decision()))
        cursor.feed(token_bytes[token_id])
    return out


@pytest.mark.parametrize("answer, opened", [(NER_ANSWER, 2), (RE_ANSWER, 2), (ZH_ANSWER, 1)])
def test_every_list_decision_of_a_real_answer_is_found(answer, opened, tiny_tokenizer):
    """Along a real tokenised answer, each list ends exactly once at a decision point on its stopping side (an
    empty list, or closed after its last item), and each list opening or further item is met on the extracting
    side: NER opens one list and adds one item; RE opens a list of objects and adds one object."""
    steps = _decisions_along(answer, tiny_tokenizer)
    extracting = [data for data, point in steps if point and token_class(data) == point[0]]
    stopping = [data for data, point in steps if point and token_class(data) == point[1]]
    assert len(stopping) == answer.count("[")
    assert len(extracting) == opened, extracting


def _points(table: dict[str, tuple[int, dict]]) -> list[dict]:
    return [{"dataset": dataset, "threshold": t, "f1": f1, "gold": gold}
            for dataset, (gold, f1s) in table.items() for t, f1 in f1s.items()]


def test_tuning_picks_the_best_macro_threshold_and_per_dataset_ones_where_dev_has_enough_gold():
    points = _points({"DuEE": (40, {None: 2.0, 0.2: 20.0, 0.7: 0.0}),       # barely opens: wants a low threshold
                      "conll04": (30, {None: 15.0, 0.2: 10.0, 0.7: 25.0}),  # over-predicts: a high one
                      "tiny": (3, {None: 50.0, 0.2: 0.0, 0.7: 100.0})})     # 3 gold items: not enough to choose
    chosen, macro = best_threshold(points)
    assert macro == {None: 22.33, 0.2: 10.0, 0.7: 41.67} and chosen == 0.7
    assert best_thresholds_per_dataset(points, chosen, min_gold=20) == {"DuEE": 0.2, "conll04": 0.7, "tiny": 0.7}
    assert best_thresholds_per_dataset(points, None, min_gold=50) == {"DuEE": None, "conll04": None, "tiny": None}
    # ties go to greedy decoding, then to the threshold nearest 0.5
    assert best_threshold(_points({"a": (9, {0.2: 5.0, None: 5.0, 0.7: 5.0})}))[0] is None
    assert best_threshold(_points({"a": (9, {0.2: 5.0, 0.6: 5.0})}))[0] == 0.6


def test_threshold_is_checked():
    assert check_threshold(None) is None and check_threshold(0.25) == 0.25
    for bad in (0, 1, 1.5, -0.1, float("nan"), True, "0.3"):
        with pytest.raises(ValueError, match="threshold"):
            check_threshold(bad)


def _scores_at_value_position(tokenizer, empty_logit: float, open_logit: float):
    """Logits of one row right after `{"person":`, with the empty list and the opening list competing."""
    import torch

    empty_id = tokenizer(' []', add_special_tokens=False)["input_ids"]
    open_id = tokenizer(' ["', add_special_tokens=False)["input_ids"]
    assert len(empty_id) == len(open_id) == 1
    scores = torch.full((1, len(tokenizer)), -20.0)
    scores[0, empty_id[0]], scores[0, open_id[0]] = empty_logit, open_logit
    return scores, empty_id[0], open_id[0]


def _processor_after(tokenizer, threshold: float, answer_so_far: str):
    import torch

    processor = ListDecisionProcessor(tokenizer, threshold, rows=1)
    prompt = torch.tensor([[1, 2]])
    processor(prompt, torch.zeros(1, len(tokenizer)))  # the first call only records the prompt length
    ids = tokenizer(answer_so_far, add_special_tokens=False)["input_ids"]
    for position, token_id in enumerate(ids):
        sequence = torch.tensor([[1, 2, *ids[:position + 1]]])
        if position < len(ids) - 1:
            processor(sequence, torch.zeros(1, len(tokenizer)))
    return processor, torch.tensor([[1, 2, *ids]])


def test_low_threshold_opens_the_list_greedy_would_leave_empty(tiny_tokenizer):
    # probabilities: empty ~0.73, open ~0.27
    scores, empty_id, open_id = _scores_at_value_position(tiny_tokenizer, 1.0, 0.0)
    processor, sequence = _processor_after(tiny_tokenizer, 0.2, '{"person":')
    chosen = processor(sequence, scores.clone()).argmax(-1).item()
    assert chosen == open_id and processor.decisions == 1 and processor.flipped == 1  # the prompt: no decision

    processor, sequence = _processor_after(tiny_tokenizer, 0.5, '{"person":')
    assert processor(sequence, scores.clone()).argmax(-1).item() == empty_id and processor.flipped == 0


def test_high_threshold_empties_a_list_greedy_would_open(tiny_tokenizer):
    scores, empty_id, open_id = _scores_at_value_position(tiny_tokenizer, 0.0, 1.0)  # open ~0.73
    processor, sequence = _processor_after(tiny_tokenizer, 0.9, '{"person":')
    assert processor(sequence, scores.clone()).argmax(-1).item() == empty_id and processor.flipped == 1


def test_no_decision_inside_a_string_the_model_continues(tiny_tokenizer):
    import torch

    processor, sequence = _processor_after(tiny_tokenizer, 0.01, '{"person": ["John')
    scores = torch.full((1, len(tiny_tokenizer)), -20.0)
    smith = tiny_tokenizer(" Smith", add_special_tokens=False)["input_ids"][0]
    scores[0, smith] = 5.0
    before = processor.decisions
    assert torch.equal(processor(sequence, scores.clone()), scores) and processor.decisions == before


# -- the real default model: the knob moves answers in the promised direction ---------------------------------------

SENTENCES = [
    "Barack Obama met Angela Merkel in Berlin on Tuesday to discuss the NATO summit.",
    "Apple said Tim Cook will visit the company's new offices in London next month.",
    "The United Nations sent aid to Haiti after the earthquake, said Ban Ki-moon.",
    "Roger Federer beat Rafael Nadal at Wimbledon, the All England Club announced.",
]


def _items(answer: str) -> int:
    from iepile.inference.answers import parse_answer

    value = parse_answer(answer).value
    return sum(len(v) for v in value.values() if isinstance(v, list)) if isinstance(value, dict) else 0


@pytest.fixture(scope="module")
def default_generator():
    from iepile.inference.generators import TransformersGenerator

    # bf16 on every CPU: the knob's effect on these few sentences was measured in bf16, and fp32 (what `auto` picks
    # without native bf16) changes which lists the model opens
    return TransformersGenerator.load(None, dtype="bf16", batch_size=4, max_new_tokens=64)


@pytest.mark.parametrize("constrain", [False, True])
def test_threshold_moves_recall_on_the_default_model(default_generator, constrain):
    from iepile.instructions import build_instruction
    from iepile.inference.generators import answer_instructions

    instructions = [build_instruction("NER", "en", ["location", "organization", "person"], text)
                    for text in SENTENCES]
    counts = {}
    default_generator.constrain = constrain
    for threshold in (0.05, None, 0.95):
        default_generator.threshold = threshold
        before = default_generator.stats.decisions
        answers = answer_instructions(default_generator, instructions, ["NER"] * len(instructions))
        counts[threshold] = sum(_items(a) for a in answers)
        if threshold is not None:
            assert default_generator.stats.decisions > before  # the knob met real decision points
    default_generator.threshold = None
    print(counts)
    # opening one more list changes the rest of an answer, so counts need not be monotonic item by item; the
    # two ends of the knob must still be far apart, on either side of greedy
    assert counts[0.05] > counts[0.95]
    assert counts[0.05] >= counts[None] - 2 and counts[0.95] <= counts[None] + 2
    if constrain:
        for answer in answers:
            json.loads(answer)  # still valid JSON under the grammar
