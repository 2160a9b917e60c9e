"""Readers on the real benchmark files (counts computed independently here) and on small hand-written files."""

from __future__ import annotations

import json

import pytest

from iepile.data.formats import FormatError, import_file, read_records
from iepile.data.formats.base import ReadOptions, ReadStats
from iepile.data.formats.conll import decode_tags
from iepile.records import RecordError
from iepile.schema import load_schema

from conftest import DATA_DIR as DATA  # ../shared/data or $IEPILE_DATA; the data_dir fixture fails without it
needs_data = pytest.mark.usefixtures("data_dir")  # fails loudly when the data is missing


def read_all(path, fmt, **kw):
    stats = ReadStats()
    records = list(read_records(path, fmt, ReadOptions(**kw), stats))
    return records, stats


def assert_offsets(records):
    """The invariant on every label: text[start:end] equals the string."""
    checked = 0
    for rec in records:
        text = rec["text"]
        for e in rec.get("entity") or ():
            assert text[e["start"]:e["end"]] == e["entity"]
            checked += 1
        for r in rec.get("relation") or ():
            for side in ("head", "tail"):
                if f"{side}_start" in r:
                    assert text[r[f"{side}_start"]:r[f"{side}_end"]] == r[side]
                    checked += 1
        for ev in rec.get("event") or ():
            if "trigger_start" in ev:
                assert text[ev["trigger_start"]:ev["trigger_end"]] == ev["event_trigger"]
                checked += 1
            for a in ev["arguments"]:
                if "start" in a:
                    assert text[a["start"]:a["end"]] == a["argument"]
                    checked += 1
    return checked


# ---------------------------------------------------------------------------------------------------------------
# conll on the real files


def conll_counts(path):
    """Sentences = non-empty blocks between blank lines; entities = B-/S- tags plus I- tags that follow O or another
    type (IOB1-style starts)."""
    sentences = entities = 0
    in_sentence, previous = False, "O"
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            sentences += in_sentence
            in_sentence, previous = False, "O"
            continue
        in_sentence = True
        tag = line.split()[-1]
        if tag[:2] in ("B-", "S-"):
            entities += 1
        elif tag[:2] in ("I-", "M-", "E-") and (previous == "O" or previous[2:] != tag[2:]
                                                 or previous[:2] in ("E-", "S-")):
            entities += 1
        previous = tag
    return sentences + in_sentence, entities


CONLL_FILES = [("en/ner/conll2003", "train.txt", 14041), ("en/ner/conll2003", "dev.txt", 3250),
               ("en/ner/conll2003", "test.txt", 3453), ("en/ner/wnut17", "train.conll", 3394),
               ("en/ner/wnut17", "dev.conll", 1009), ("en/ner/wnut17", "test.conll", 1287),
               ("zh/ner/weibo", "train.conll", 1350), ("zh/ner/weibo", "dev.conll", 270),
               ("zh/ner/weibo", "test.conll", 270), ("zh/ner/resume", "train.bmes", 3821),
               ("zh/ner/resume", "dev.bmes", 463), ("zh/ner/resume", "test.bmes", 477)]


@needs_data
@pytest.mark.parametrize("folder,name,expected", CONLL_FILES)
def test_conll_real_files(folder, name, expected):
    path = DATA / folder / name
    records, stats = read_all(path, "conll")
    sentences, entities = conll_counts(path)
    assert len(records) == sentences == expected == stats.records
    assert sum(len(r["entity"]) for r in records) == entities == stats.entities
    assert stats.rejected == 0 and not stats.skipped
    assert assert_offsets(records) == entities


@needs_data
def test_conll_text_rebuilt_per_language():
    en, _ = read_all(DATA / "en/ner/conll2003/dev.txt", "conll")
    assert en[0]["text"] == "CRICKET - LEICESTERSHIRE TAKE OVER AT TOP AFTER INNINGS VICTORY ."
    assert en[0]["entity"] == [{"entity": "LEICESTERSHIRE", "entity_type": "organisation", "start": 10, "end": 24}]
    zh, stats = read_all(DATA / "zh/ner/weibo/dev.conll", "conll")
    assert " " not in zh[0]["text"][:5] and not any(c.isdigit() for c in zh[0]["text"][:3])
    assert stats.notes["tokens carry a word-position digit (Weibo style); digit removed"] == 1
    assert {e["entity_type"] for r in zh for e in r["entity"]} <= {
        f"{t}.{s}" for t in ("PER", "LOC", "ORG", "GPE") for s in ("NAM", "NOM")}
    resume, _ = read_all(DATA / "zh/ner/resume/train.bmes", "conll")
    assert resume[0]["text"] == "高勇：男，中国国籍，无境外居留权，"
    assert resume[0]["entity"][0] == {"entity": "高勇", "entity_type": "NAME", "start": 0, "end": 2}


def test_conll_variants(tmp_path):
    path = tmp_path / "x.conll"
    path.write_bytes("-DOCSTART- -X- O O\r\n\r\nEU NNP B-NP I-ORG\r\nrejects VBZ B-VP O\r\nGerman JJ B-NP I-MISC\r\n"
                     "call NN I-NP O\r\n\r\nPeter B-PER\r\nBlack E-PER\r\nin O\r\nParis S-LOC\r\n".encode())
    records, stats = read_all(path, "conll")
    assert [r["text"] for r in records] == ["EU rejects German call", "Peter Black in Paris"]
    assert records[0]["entity"] == [{"entity": "EU", "entity_type": "ORG", "start": 0, "end": 2},
                                    {"entity": "German", "entity_type": "MISC", "start": 11, "end": 17}]
    assert [e["entity"] for e in records[1]["entity"]] == ["Peter Black", "Paris"]
    assert stats.notes["-DOCSTART- line"] == 1


def test_decode_tags_schemes():
    assert decode_tags(["B-A", "I-A", "O", "B-A", "B-A"])[0] == [("A", 0, 2), ("A", 3, 4), ("A", 4, 5)]
    assert decode_tags(["I-A", "I-A", "B-A", "O"])[0] == [("A", 0, 2), ("A", 2, 3)]  # IOB1
    assert decode_tags(["B-A", "M-A", "E-A", "S-B"])[0] == [("A", 0, 3), ("B", 3, 4)]  # BMES
    assert decode_tags(["B-A", "I-B"]) == ([("A", 0, 1), ("B", 1, 2)],
                                           ["entity starts with I-/M- (IOB1 or repaired BIO)"])


def test_conll_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("a O\nb\n\nc B-X\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"bad.conll:2: expected a token and a tag"):
        read_all(path, "conll")
    records, stats = read_all(path, "conll", on_error="skip")
    assert len(records) == 1 and stats.rejected == 1


# ---------------------------------------------------------------------------------------------------------------
# spert, pair-tsv, duee, phee on the real files


@needs_data
@pytest.mark.parametrize("folder,name,expected", [("en/re/conll04", "train.json", 922),
                                                   ("en/re/conll04", "test.json", 288),
                                                   ("en/re/scierc", "train.json", 1861),
                                                   ("en/re/scierc", "dev.json", 275)])
def test_spert_real_files(folder, name, expected):
    path = DATA / folder / name
    raw = json.loads(path.read_text(encoding="utf-8"))
    records, stats = read_all(path, "spert")
    assert len(raw) == len(records) == expected
    assert stats.relations == sum(len(d["relations"]) for d in raw)
    assert assert_offsets(records) == 2 * stats.relations
    ner, ner_stats = read_all(path, "spert", task="NER")
    assert ner_stats.entities == sum(len(d["entities"]) for d in raw)
    assert assert_offsets(ner) == ner_stats.entities
    first = raw[0]
    ent = first["entities"][0]
    assert ner[0]["entity"][0]["entity"] == " ".join(first["tokens"][ent["start"]:ent["end"]])


@needs_data
def test_spert_spo_schema(tmp_path):
    result = import_file(DATA / "en/re/conll04/dev.json", tmp_path / "c.json", "spert", ReadOptions(task="SPO"))
    schema = load_schema(result["schema"])
    assert "Peop_Live_In_Loc" in schema.type_list and "Live_In" in schema.role_list


@needs_data
@pytest.mark.parametrize("name", ["train.txt", "valid.txt", "test.txt"])
def test_pair_tsv_sanwen(name):
    path = DATA / "zh/re/sanwen" / name
    lines = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    sentences = {parts[3] for parts in lines}
    positive = {(p[0], p[1], p[2], p[3]) for p in lines if p[2] != "unknown"}
    records, stats = read_all(path, "pair-tsv", no_relation=("unknown",))
    assert len(records) == len(sentences) == stats.records
    assert stats.relations == len(positive)
    assert stats.notes["no-relation pair (unknown) not written as a relation"] == sum(p[2] == "unknown"
                                                                                      for p in lines)
    assert stats.skipped.get("duplicate pair in the same sentence", 0) == \
        sum(p[2] != "unknown" for p in lines) - len(positive)
    assert assert_offsets(records) == 2 * stats.relations
    consecutive, _ = read_all(path, "pair-tsv", no_relation=("unknown",), group="consecutive")
    assert len(consecutive) >= len(records)


@needs_data
def test_duee_dev_and_schema(tmp_path):
    path = DATA / "zh/ee/duee/dev.json"
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    result = import_file(path, tmp_path / "duee.json", "duee")
    assert result["records"] == len(raw) == 1498
    assert result["events"] == sum(len(r["event_list"]) for r in raw)
    assert result["arguments"] == sum(len(e["arguments"]) for r in raw for e in r["event_list"])
    records = [json.loads(line) for line in (tmp_path / "duee.json").read_text(encoding="utf-8").splitlines()]
    assert assert_offsets(records) == result["events"] + result["arguments"]
    schema = load_schema(tmp_path / "duee.schema.json")
    assert len(schema.type_list) == 65 and schema.type_list[0] == "财经/交易-出售/收购"
    assert schema.type_role_dict["财经/交易-跌停"] == ["时间", "跌停股票"]


def phee_counts(path):
    """Events, and argument mentions over top-level roles and their sub-roles."""
    events = arguments = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        for annotation in json.loads(line)["annotations"]:
            for ev in annotation["events"]:
                events += 1
                for key, node in ev.items():
                    if isinstance(node, dict) and key != "Trigger":
                        arguments += len(node["text"])
                        arguments += sum(len(child["text"]) for child in node.values() if isinstance(child, dict))
    return events, arguments


@needs_data
@pytest.mark.parametrize("name,expected", [("train.json", 2898), ("dev.json", 961), ("test.json", 968)])
def test_phee_real_files(name, expected):
    path = DATA / "en/ee/phee" / name
    records, stats = read_all(path, "phee")
    events, arguments = phee_counts(path)
    assert stats.records == len(records) == expected
    assert (stats.events, stats.arguments) == (events, arguments)
    assert assert_offsets(records) == events + arguments
    roles = {a["role"] for r in records for e in r["event"] for a in e["arguments"]}
    assert {"Treatment.Drug", "Subject.Age", "Effect"} <= roles


# ---------------------------------------------------------------------------------------------------------------
# hand-written files for the formats without a shared file


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_triples(tmp_path):
    path = write(tmp_path, "nyt.json", json.dumps([
        {"text": "Barack Obama was born in Hawaii .", "triple_list": [["Barack Obama", "born_in", "Hawaii"]]},
        {"text": "Paris is nice .", "triple_list": [["Paris", "capital_of", "France"]]}]))
    records, stats = read_all(path, "triples")
    assert records[0]["relation"][0] == {"head": "Barack Obama", "relation": "born_in", "tail": "Hawaii",
                                         "head_start": 0, "head_end": 12, "tail_start": 25, "tail_end": 31}
    assert "tail_start" not in records[1]["relation"][0]
    assert stats.notes["tail not found in text (kept without offsets)"] == 1
    assert_offsets(records)


def test_opennre_token_and_text(tmp_path):
    lines = [{"token": ["Bill", "Gates", "founded", "Microsoft", "."], "h": {"name": "bill gates", "pos": [0, 2]},
              "t": {"name": "microsoft", "pos": [3, 4]}, "relation": "founder"},
             {"token": ["Bill", "Gates", "founded", "Microsoft", "."], "h": {"pos": [3, 4]}, "t": {"pos": [0, 2]},
              "relation": "NA"},
             {"text": "Alice met Bob.", "h": {"pos": [0, 5]}, "t": {"pos": [10, 13]}, "relation": "NA"}]
    path = write(tmp_path, "nre.txt", "\n".join(json.dumps(x) for x in lines) + "\n")
    records, stats = read_all(path, "opennre")
    assert len(records) == 2 and stats.relations == 1
    assert records[0]["relation"][0]["head"] == "Bill Gates" and records[1]["relation"] == []
    assert_offsets(records)


def test_spo_list_complex_objects(tmp_path):
    rec = {"text": "《叶问》是甄子丹主演的电影，导演叶伟信", "spo_list": [
        {"predicate": "主演", "subject": "叶问", "subject_type": "影视作品", "object": {"@value": "甄子丹"},
         "object_type": {"@value": "人物"}},
        {"predicate": "饰演", "subject": "甄子丹", "subject_type": "娱乐人物",
         "object": {"@value": "叶问", "inWork": "叶问"}, "object_type": {"@value": "角色", "inWork": "影视作品"}},
        {"predicate": "导演", "subject": "叶问", "subject_type": "影视作品", "object": "叶伟信", "object_type": "人物"}]}
    path = write(tmp_path, "duie.json", json.dumps(rec, ensure_ascii=False) + "\n")
    result = import_file(path, tmp_path / "out.json", "spo-list")
    assert result["relations"] == 3 and result["skipped"] == {"complex object slot other than @value": 1,
                                                              "complex object_type slot other than @value": 1}
    schema = load_schema(result["schema"])
    assert schema.type_list == ["娱乐人物_饰演_角色", "影视作品_主演_人物", "影视作品_导演_人物"]
    out = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert out["relation"][0]["head_type"] == "影视作品" and out["relation"][0]["tail"] == "甄子丹"
    assert_offsets([out])


def test_fewfc(tmp_path):
    rec = {"id": "1", "content": "公司A收购了公司B的股份", "events": [{"type": "收购", "mentions": [
        {"word": "收购", "span": [3, 5], "role": "trigger"}, {"word": "公司A", "span": [0, 3], "role": "sub-org"},
        {"word": "公司B", "span": [6, 9], "role": "obj-org"}]}]}
    records, stats = read_all(write(tmp_path, "fewfc.json", json.dumps(rec, ensure_ascii=False) + "\n"), "fewfc")
    ev = records[0]["event"][0]
    assert (ev["event_type"], ev["event_trigger"], ev["trigger_start"]) == ("收购", "收购", 3)
    assert [a["role"] for a in ev["arguments"]] == ["sub-org", "obj-org"]
    assert assert_offsets(records) == 3


def test_casie_sentences(tmp_path):
    content = "Hackers stole data from Acme. The breach hit 5 users. Nothing else happened."
    doc = {"content": content, "cyberevent": {"hopper": [{"events": [{
        "type": "Attack", "subtype": "Databreach",
        "nugget": {"text": "stole", "startOffset": 8, "endOffset": 13},
        "argument": [{"text": "Hackers", "startOffset": 0, "endOffset": 7, "role": {"type": "Attacker"}},
                     {"text": "Acme", "startOffset": 24, "endOffset": 28, "role": {"type": "Victim"}},
                     {"text": "5 users", "startOffset": 45, "endOffset": 52, "role": {"type": "Number-of-Victim"}}]},
        {"type": "Attack", "subtype": "Databreach", "nugget": {"text": "breach", "startOffset": 34, "endOffset": 40},
         "argument": []}]}]}}
    records, stats = read_all(write(tmp_path, "casie.json", json.dumps(doc)), "casie")
    assert [r["text"] for r in records] == ["Hackers stole data from Acme.", "The breach hit 5 users.",
                                            "Nothing else happened."]
    assert [a["argument"] for a in records[0]["event"][0]["arguments"]] == ["Hackers", "Acme"]
    assert records[1]["event"][0]["event_trigger"] == "breach"
    assert stats.skipped["argument outside the trigger's sentence"] == 1
    assert assert_offsets(records) == 4
    whole, _ = read_all(tmp_path / "casie.json", "casie", unit="document", extra={"casie_type": "both"})
    assert len(whole) == 1 and whole[0]["event"][0]["event_type"] == "Attack.Databreach"
    assert len(whole[0]["event"][0]["arguments"]) == 3


def test_rams(tmp_path):
    doc = {"doc_key": "d1", "sentences": [["The", "bomb", "killed", "three"], ["people", "in", "Kabul", "."]],
           "evt_triggers": [[2, 2, [["life.die.deathcausedbyviolentevents", 1.0]]]],
           "gold_evt_links": [[[2, 2], [3, 4], "evt090arg02victim"], [[2, 2], [6, 6], "evt090arg04place"],
                              [[7, 7], [1, 1], "evt090arg01killer"]]}
    records, stats = read_all(write(tmp_path, "rams.jsonl", json.dumps(doc) + "\n"), "rams")
    ev = records[0]["event"][0]
    assert ev["event_trigger"] == "killed"
    assert [(a["argument"], a["role"]) for a in ev["arguments"]] == [("three people", "victim"), ("Kabul", "place")]
    assert stats.skipped["argument link to an unknown trigger"] == 1
    assert assert_offsets(records) == 3


def test_wikievents(tmp_path):
    doc = {"doc_id": "w1", "tokens": ["A", "bomb", "exploded", ".", "Police", "arrested", "Bob", "."],
           "sentences": [[[["A", 0, 1], ["bomb", 2, 6], ["exploded", 7, 15], [".", 15, 16]], "A bomb exploded."],
                         [[["Police", 17, 23], ["arrested", 24, 32], ["Bob", 33, 36], [".", 36, 37]],
                          "Police arrested Bob."]],
           "entity_mentions": [{"id": "e1", "start": 1, "end": 2, "text": "bomb"},
                               {"id": "e2", "start": 4, "end": 5, "text": "Police"},
                               {"id": "e3", "start": 6, "end": 7, "text": "Bob"}],
           "event_mentions": [{"id": "v1", "event_type": "Conflict.Attack.DetonateExplode",
                               "trigger": {"start": 2, "end": 3, "text": "exploded", "sent_idx": 0},
                               "arguments": [{"entity_id": "e1", "role": "ExplosiveDevice"},
                                             {"entity_id": "e3", "role": "Attacker"}]},
                              {"id": "v2", "event_type": "Justice.ArrestJailDetain.Unspecified",
                               "trigger": {"start": 5, "end": 6, "text": "arrested", "sent_idx": 1},
                               "arguments": [{"entity_id": "e2", "role": "Jailer"},
                                             {"entity_id": "e3", "role": "Detainee"}]}]}
    records, stats = read_all(write(tmp_path, "wiki.jsonl", json.dumps(doc) + "\n"), "wikievents")
    assert [r["text"] for r in records] == ["A bomb exploded .", "Police arrested Bob ."]
    assert [a["argument"] for a in records[1]["event"][0]["arguments"]] == ["Police", "Bob"]
    assert stats.skipped["argument outside the trigger's sentence"] == 1
    assert assert_offsets(records) == 5


@needs_data
def test_fewrel_real_file_with_relation_names():
    path = DATA / "en/re/fewrel/val_wiki.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    names = {pid: value[0] for pid, value in json.loads((path.parent / "pid2name.json").read_text()).items()}
    records, stats = read_all(path, "fewrel")
    assert len(records) == sum(len(v) for v in raw.values()) == 11200 and stats.rejected == 0
    assert {r["relation"][0]["relation"] for r in records} == {names[pid] for pid in raw}
    assert "spouse" in {r["relation"][0]["relation"] for r in records}
    first = raw["P177"][0]
    head = " ".join(first["tokens"][i] for i in first["h"][2][0])
    assert records[0]["relation"][0]["head"] == head and records[0]["id"] == "P177[0]"
    assert assert_offsets(records) == 2 * 11200


def test_fewrel_without_names_and_bad_items(tmp_path):
    data = {"P26": [{"tokens": ["Ann", "married", "Bob", "."], "h": ["ann", "Q1", [[0]]], "t": ["bob", "Q2", [[2]]]},
                    {"tokens": ["x"], "h": ["x", "Q3", [[5]]], "t": ["x", "Q3", [[0]]]}]}
    path = write(tmp_path, "val.json", json.dumps(data))
    with pytest.raises(RecordError, match=r"P26\[1\]\.h: token indices outside"):
        read_all(path, "fewrel")
    records, stats = read_all(path, "fewrel", on_error="skip")
    assert [(r["head"], r["relation"], r["tail"]) for r in records[0]["relation"]] == [("Ann", "P26", "Bob")]
    assert stats.rejected == 1 and any("Wikidata ids" in note for note in stats.notes)


def test_unknown_format_and_task(tmp_path):
    with pytest.raises(FormatError, match="unknown format"):
        read_all(tmp_path / "x", "xml")
    path = write(tmp_path, "t.json", "[]")
    with pytest.raises(FormatError, match="produces RE"):
        read_all(path, "triples", task="EE")


def test_import_writes_schema_and_label_map(tmp_path):
    path = write(tmp_path, "a.conll", "Ann B-PER.NAM\nmet O\nher B-PER.NOM\n")
    result = import_file(path, tmp_path / "out" / "a.json", "conll",
                         label_map={"PER.NAM": "person", "PER.NOM": "person"})
    assert result["schema"].endswith("a.schema.json")
    assert (tmp_path / "out" / "a.schema.json").read_text() == '["person"]\n[]\n{}\n'
    assert result["entities"] == 2


def test_import_and_clean_commands_are_built_from_their_options(tmp_path):
    """``iepile import`` / ``clean`` flags are ReadOptions / CleanOptions fields: a comma-separated --no-relation
    list reaches the reader, --no-dedup and --rules reach the cleaner."""
    from typer.testing import CliRunner

    from iepile.cli import app

    src = DATA / "zh/re/sanwen/test.txt"
    runner = CliRunner()
    relations = {}
    for name, no_relation in (("default", []), ("kept", ["--no-relation", "Other,nothing-here"])):
        out = tmp_path / f"{name}.json"
        result = runner.invoke(app, ["import", str(src), str(out), "--format", "pair-tsv", "--task", "RE",
                                     *no_relation])
        assert result.exit_code == 0, result.output
        relations[name] = [r["relation"] for line in out.read_text(encoding="utf-8").splitlines()
                           for r in json.loads(line)["relation"]]
    assert "unknown" not in relations["default"]
    unknown = relations["kept"].count("unknown")
    assert unknown > 0 and len(relations["kept"]) == len(relations["default"]) + unknown
    records = (tmp_path / "default.json").read_text(encoding="utf-8")
    doubled = tmp_path / "doubled.json"
    doubled.write_text(records * 2, encoding="utf-8")
    kept = {}
    for name, flags in (("dedup", []), ("no-dedup", ["--no-dedup"])):
        out = tmp_path / f"clean-{name}.json"
        result = runner.invoke(app, ["clean", str(doubled), str(out), "--rules", "too_short", *flags])
        assert result.exit_code == 0, result.output
        kept[name] = len(out.read_text(encoding="utf-8").splitlines())
    assert kept == {"dedup": len(records.splitlines()), "no-dedup": 2 * len(records.splitlines())}


@pytest.mark.parametrize("setting", [{"unit": "doc"}, {"language": "fr"}, {"on_error": "ignore"},
                                     {"char_digit": "maybe"}])
def test_a_reader_option_outside_its_values_is_an_error(tmp_path, setting):
    name = next(iter(setting))
    with pytest.raises(ValueError, match=f"--{name.replace('_', '-')} must be one of"):
        import_file(DATA / "en/ner/conll2003/test.txt", tmp_path / "x.json", "conll", ReadOptions(**setting))
    assert not (tmp_path / "x.json").exists()
