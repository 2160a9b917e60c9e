"""``Extractor``: schema groups merged into one de-duplicated answer with provenance, character offsets in English
and Chinese (all occurrences, ambiguity, full-width forms), and long texts split into sentence windows."""

from __future__ import annotations

import json

from iepile.inference.extract import Extractor
from iepile.inference.grounding import TextGrounder, windows
from iepile.text import sentence_spans, tile
from predict_support import scripted, tiny_generator, tiny_loaded, tiny_model_dir, tiny_tokenizer  # noqa: F401


KNOWN = {"person": ["Alice", "Bob", "Zed"], "location": ["Paris", "Paris"], "地点": ["北京", "(上海)"],
         "organisation": ["ACME"]}


def known_entities(schema, text):
    return json.dumps({t: [e for e in KNOWN.get(t, []) if e in text or e in ("Zed", "(上海)")] for t in schema},
                      ensure_ascii=False)


def test_groups_run_as_one_batch_and_merge(scripted):
    generator = scripted(known_entities)
    extractor = Extractor(generator=generator, split_num=1)
    results = extractor.extract_batch(["Alice met Bob in Paris. Then Alice left.", "ACME is in Paris."],
                                      ["person", "location", "organisation"], task="NER")
    assert generator.batches == [6]  # 3 groups x 2 texts, one call
    first = results[0]
    assert first.answer == {"person": ["Alice", "Bob", "Zed"], "location": ["Paris"], "organisation": []}
    alice = next(item for item in first.items if item.value == "Alice")
    assert alice.spans[0]["offsets"] == [[0, 5], [29, 34]] and alice.ambiguous
    assert alice.sources == [{"window": 0, "group": 2}]  # groups follow the sorted schema: location, organisation, person
    zed = next(item for item in first.items if item.value == "Zed")
    assert not zed.grounded and zed.spans[0]["match"] is None
    assert results[1].answer["organisation"] == ["ACME"] and not results[1].split


def test_unasked_keys_and_failures_are_reported(scripted):
    def answer(schema, text):
        return '{"person": ["Alice"], "city": ["Paris"]}' if schema == ["person"] else "not json at all"

    extractor = Extractor(generator=scripted(answer), split_num=1)
    result = extractor.extract("Alice in Paris", ["person", "location"], task="NER")
    assert result.answer == {"person": ["Alice"], "location": []}
    statuses = sorted(f["status"] for f in result.failures)
    assert statuses == ["failed", "unasked_keys"]


def test_chinese_offsets_full_width_aware(scripted):
    extractor = Extractor(generator=scripted(known_entities))
    text = "我在北京，也去过（上海）和北京。"
    result = extractor.extract(text, ["地点"], task="NER")
    spans = {item.value: item.spans[0] for item in result.items}
    assert spans["北京"]["offsets"] == [[2, 4], [13, 15]] and spans["北京"]["match"] == "exact"
    assert spans["(上海)"]["offsets"] == [[8, 12]] and spans["(上海)"]["match"] == "normalized"
    assert text[8:12] == "（上海）" and result.language == "zh"


def test_grounding_matches_whole_english_words_and_folds_spaces():
    grounder = TextGrounder("The US and the USA; New  York.")
    assert grounder.ground("US").offsets == [[4, 6]]
    found = grounder.ground("New York")
    assert found.offsets == [[20, 29]] and found.match == "normalized"


def test_relations_and_kg_merge(scripted):
    def relation(schema, text):
        return json.dumps({k: [{"subject": "Alice", "object": "ACME"}] for k in schema})

    result = Extractor(generator=scripted(relation), split_num=1).extract(
        "Alice joined ACME.", ["works for", "founded"], task="RE")
    assert result.answer == {"works for": [{"subject": "Alice", "object": "ACME"}],
                             "founded": [{"subject": "Alice", "object": "ACME"}]}
    assert all(item.grounded and not item.ambiguous for item in result.items)

    def kg(schema, text):
        name = schema[0]["entity_type"]
        return json.dumps({name: {"明治天皇": {"别名": "睦仁"}} if "睦仁" in text else
                           {"明治天皇": {"父母": "孝明天皇"}}}, ensure_ascii=False)

    text = "明治天皇别名睦仁。" * 3 + "明治天皇的父母是孝明天皇。" * 3
    extractor = Extractor(generator=scripted(kg), window_tokens=20, window_overlap=0)
    result = extractor.extract(text, {"人物": ["别名", "父母"]}, task="KG")
    assert result.split
    assert result.answer == {"人物": {"明治天皇": {"别名": "睦仁", "父母": "孝明天皇"}}}


def test_sentence_spans_and_their_tiling():
    text = "Dr. Smith went to the U.S. Open. He slept!  Then 他醒了。然后走了？Yes\nNo"
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["Dr. Smith went to the U.S. Open.", "He slept!", "Then 他醒了。",
                                             "然后走了？", "Yes", "No"]
    tiles = tile(spans, len(text))
    assert "".join(text[s:e] for s, e in tiles) == text and len(tiles) == len(spans)
    assert sentence_spans("e.g. lower case goes on. Next one") == [(0, 24), (25, 33)]


def test_windows_fit_overlap_and_cover():
    text = " ".join(f"Sentence number {i} is here." for i in range(30)) + " " + "x" * 200

    count = len  # one "token" per character: additive, so the budget check is exact

    spans = windows(text, count, budget=120, overlap=40)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(count(text[s:e]) <= 120 for s, e in spans)
    assert all(b[0] <= a[1] for a, b in zip(spans, spans[1:]))  # no gap
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:]))   # overlap
    assert windows("short", count, budget=120, overlap=40) == [(0, 5)]


def test_long_text_windows_rebase_offsets(scripted):
    def found(schema, text):
        return json.dumps({t: [w for w in ("Alice", "Paris", "Carol") if w in text] for t in schema})

    text = " ".join(f"Sentence {i} says Alice went to Paris." for i in range(15)) + " Finally Carol left."
    generator = scripted(found)
    result = Extractor(generator=generator, window_tokens=24, window_overlap=8).extract(
        text, ["person"], task="NER")
    assert result.split and len(result.windows) > 2 and generator.batches == [len(result.windows)]
    assert result.answer == {"person": ["Alice", "Paris", "Carol"]}
    carol = next(item for item in result.items if item.value == "Carol")
    (start, end), = carol.spans[0]["offsets"]
    assert text[start:end] == "Carol"
    assert carol.sources == [{"window": len(result.windows) - 1, "group": 0}]
    alice = next(item for item in result.items if item.value == "Alice")
    assert len(alice.spans[0]["offsets"]) == 15 and len(alice.sources) == len(result.windows)


def test_tiny_model_constrained_extract_is_grounded(tiny_generator):
    tiny_generator.constrain, tiny_generator.max_new_tokens = True, 32
    text = "Alice Smith works for ACME in Paris. 张三在北京工作。 Bob moved to Berlin. " * 3
    result = Extractor(generator=tiny_generator, window_tokens=40).extract(
        text, ["person", "location", "organisation"], task="NER")
    assert result.split
    assert not [f for f in result.failures if f["status"] == "failed"]
    for item in result.items:
        assert item.grounded
        for span in item.spans:
            assert all(text[s:e] == span["text"] for s, e in span["offsets"])
