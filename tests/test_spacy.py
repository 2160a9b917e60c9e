"""spaCy in and out: the ``iepile`` pipeline component (found through its entry point) and the ``spacy`` /
``prodigy`` readers on the real exports in ../shared/data/annotation-tools/prodigy_spacy."""

from __future__ import annotations

import json

import pytest
import spacy
from spacy.tokens import DocBin

from conftest import DATA_DIR as DATA
from predict_support import scripted, tiny_loaded, tiny_model_dir  # noqa: F401 (fixtures)
from iepile.data.formats import import_file
from iepile.data.formats.base import ReadOptions
from iepile.inference.extract import Extractor
from iepile.integrations.spacy_component import IEPileComponent
from iepile.records import RecordError

FOLDER = DATA / "annotation-tools" / "prodigy_spacy"
KNOWN = {"person": ["Alice", "Bob"], "location": ["Paris"], "lives in": [{"subject": "Bob", "object": "Paris"}]}


def answer(schema, text):
    return json.dumps({label: [v for v in KNOWN.get(label, []) if isinstance(v, dict) or v in text]
                       for label in schema})


def test_component_sets_ents_spans_and_relations(scripted):
    nlp = spacy.blank("en")
    ner = IEPileComponent(nlp, task="NER", labels=["person", "location"], extractor=Extractor(
        generator=scripted(answer)))
    docs = list(ner.pipe(nlp.pipe(["Alice met Bob in Paris. Alice left.", "Nobody here."])))
    assert [(e.text, e.label_) for e in docs[0].ents] == [("Alice", "person"), ("Bob", "person"),
                                                          ("Paris", "location"), ("Alice", "person")]
    assert len(docs[0].spans["iepile"]) == 4 and list(docs[1].ents) == []
    assert docs[0]._.iepile["answer"] == {"person": ["Alice", "Bob"], "location": ["Paris"]}
    rel = IEPileComponent(nlp, task="RE", labels=["lives in"], extractor=Extractor(generator=scripted(answer)))
    doc = rel(nlp("Bob lives in Paris."))
    assert [(h.text, r, t.text) for h, r, t in doc._.iepile_relations] == [("Bob", "lives in", "Paris")]


def test_add_pipe_finds_the_component_through_its_entry_point(tiny_model_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("iepile", config={"labels": ["person", "location"], "model": str(tiny_model_dir), "dtype": "fp32",
                                   "max_new_tokens": 16})
    doc = nlp("Alice lives in Paris.")
    assert nlp.pipe_names == ["iepile"] and doc._.iepile["task"] == "NER"
    assert all(span.label_ in ("person", "location") for span in doc.spans["iepile"])
    with pytest.raises(ValueError, match="needs labels"):
        spacy.blank("en").add_pipe("iepile", config={"model": str(tiny_model_dir)})


def test_spacy_offsets_json_and_docbin(tmp_path):
    raw = json.loads((FOLDER / "spacy_offsets_train.json").read_text(encoding="utf-8"))
    out = tmp_path / "offsets.json"
    import_file(FOLDER / "spacy_offsets_train.json", out, "spacy", ReadOptions())
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["text"], [[e["start"], e["end"], e["entity_type"]] for e in r["entity"]]) for r in records] == \
        [(text, labelled["entities"]) for text, labelled in raw]
    nlp = spacy.blank("en")
    docbin = DocBin()
    for text, labelled in raw:
        doc = nlp.make_doc(text)
        doc.ents = [doc.char_span(s, e, label=label) for s, e, label in labelled["entities"]]
        doc.spans["extra"] = list(doc.ents)  # the same spans in a group: kept once
        docbin.add(doc)
    docbin.to_disk(tmp_path / "train.spacy")
    import_file(tmp_path / "train.spacy", tmp_path / "docbin.json", "spacy", ReadOptions(language="en"))
    again = [json.loads(line) for line in (tmp_path / "docbin.json").read_text(encoding="utf-8").splitlines()]
    assert again == [{k: v for k, v in r.items() if k != "id"} for r in records]


def test_prodigy_accepts_and_counts_the_rest(tmp_path):
    path = FOLDER / "prodigy_ner_news_headlines.jsonl"
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    accepted = [r for r in raw if r.get("answer", "accept") == "accept"]
    stats = import_file(path, tmp_path / "p.json", "prodigy", ReadOptions())
    records = [json.loads(line) for line in (tmp_path / "p.json").read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(accepted) and stats["skipped"] == {"Prodigy answer 'ignore'": len(raw) - len(accepted)}
    assert [[(e["start"], e["end"], e["entity_type"]) for e in r["entity"]] for r in records] == \
        [[(s["start"], s["end"], s["label"]) for s in r.get("spans", [])] for r in accepted]


def test_docbin_export_round_trip_and_pre_annotations(tmp_path, scripted):
    from iepile.data.formats import spacy_docs
    from iepile.inference.exports import results_to_records

    import_file(FOLDER / "spacy_offsets_train.json", tmp_path / "records.json", "spacy", ReadOptions())
    records = [json.loads(line) for line in (tmp_path / "records.json").read_text(encoding="utf-8").splitlines()]
    assert spacy_docs.write(records, tmp_path / "out.spacy") == len(records)
    import_file(tmp_path / "out.spacy", tmp_path / "back.json", "spacy", ReadOptions(language="en"))
    back = [json.loads(line) for line in (tmp_path / "back.json").read_text(encoding="utf-8").splitlines()]
    assert back == records
    results = Extractor(generator=scripted(answer)).extract_batch(["Alice met Bob in Paris. Alice left."],
                                                                  ["person", "location"], task="NER")
    spacy_docs.write(results_to_records(results, "NER"), tmp_path / "pre.spacy")
    [doc] = DocBin().from_disk(tmp_path / "pre.spacy").get_docs(spacy.blank("en").vocab)
    assert [(e.text, e.label_) for e in doc.ents] == [("Alice", "person"), ("Bob", "person"), ("Paris", "location"),
                                                      ("Alice", "person")]
    assert [list(span) for span in doc.user_data["iepile_ambiguous"]] == [[0, 5], [24, 29]]


def test_component_sets_events_and_a_docbin_keeps_relations_and_events(tmp_path, scripted):
    from iepile.data.formats import spacy_docs
    from iepile.inference.exports import results_to_records

    nlp = spacy.blank("en")
    key = lambda item: item if isinstance(item, str) else item["event_type"]  # noqa: E731 (EE items are objects)
    answers = {"attack": [{"trigger": "attacked", "arguments": {"attacker": "Rebels", "target": "town"}}],
               "lives in": [{"subject": "Bob", "object": "Paris"}]}
    generator = scripted(lambda schema, text: json.dumps({key(k): answers.get(key(k), []) for k in schema}))
    ee = IEPileComponent(nlp, task="EE", labels={"attack": ["attacker", "target"]},
                         extractor=Extractor(generator=generator))
    doc = ee(nlp("Rebels attacked the town."))
    [event] = doc._.iepile_events
    assert event["event_type"] == "attack" and event["trigger"].text == "attacked"
    assert [(role, span.text) for role, span in event["arguments"]] == [("attacker", "Rebels"), ("target", "town")]
    assert [s.text for s in doc.spans["iepile_triggers"]] == ["attacked"] and list(doc.ents) == []
    records = results_to_records(Extractor(generator=generator).extract_batch(["Bob lives in Paris."], ["lives in"],
                                                                              task="RE"), "RE")
    spacy_docs.write(records, tmp_path / "re.spacy")
    import_file(tmp_path / "re.spacy", tmp_path / "re.json", "spacy", ReadOptions(task="RE", language="en"))
    [back] = [json.loads(line) for line in (tmp_path / "re.json").read_text(encoding="utf-8").splitlines()]
    assert [(r["head"], r["relation"], r["tail"], r["head_start"], r["tail_start"]) for r in back["relation"]] == \
        [("Bob", "lives in", "Paris", 0, 13)]
    DocBin(docs=[nlp("A doc from another tool.")]).to_disk(tmp_path / "plain.spacy")
    with pytest.raises(RecordError, match=r"doc 1 has no user_data\['iepile_relations'\]"):
        import_file(tmp_path / "plain.spacy", tmp_path / "plain.json", "spacy", ReadOptions(task="RE"))
    stats = import_file(tmp_path / "plain.spacy", tmp_path / "plain.json", "spacy",
                        ReadOptions(task="RE", on_error="skip"))
    assert stats["rejected"] == 1
