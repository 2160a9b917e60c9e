"""Golden tests for `iepile convert`, written from the specification (iepile-behaviour.md §1, §2), byte for byte."""

from __future__ import annotations

import hashlib
import json

import pytest

import iepile
from iepile.convert import ConvertOptions, convert_file
from iepile.instructions import SENTENCES, build_instruction
from iepile.schema import Schema

NER_ZH = "你是专门进行实体抽取的专家。请从input中抽取出符合schema定义的实体，不存在的实体类型返回空列表。请按照JSON字符串的格式回答。"
APPENDIX_TEXT = "相比之下，青岛海牛队和广州松日队的雨中之战虽然也是0∶0，但乏善可陈。"
APPENDIX_RECORD = {"text": APPENDIX_TEXT, "entity": [{"entity": "广州松日队", "entity_type": "组织机构"},
                                                     {"entity": "青岛海牛队", "entity_type": "组织机构"}]}


def test_instruction_is_byte_identical_to_the_reference_format():
    expected = ('{"instruction": "' + NER_ZH + '", "schema": ["人物", "地理位置", "组织机构"], "input": "'
                + APPENDIX_TEXT + '"}')
    assert build_instruction("NER", "zh", ["人物", "地理位置", "组织机构"], APPENDIX_TEXT) == expected


def test_every_task_sentence_is_pinned():
    assert SENTENCES["NER"]["en"] == (
        "You are an expert in named entity recognition. Please extract entities that match the schema definition "
        "from the input. Return an empty list if the entity type does not exist. Please respond in the format of a "
        "JSON string.")
    assert SENTENCES["SPO"] == SENTENCES["RE"]
    assert SENTENCES["EEA"]["zh"].startswith("你是专门进行事件论元提取的专家。")
    assert SENTENCES["KG"]["zh"].endswith("并输出为可解析的json格式。")
    assert all(set(v) == {"en", "zh"} for v in SENTENCES.values())
    assert set(SENTENCES) == {"NER", "RE", "SPO", "EE", "EET", "EEA", "KG"}


def _write(tmp_path, name, records, schema_lines):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "data.json").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                                      encoding="utf-8")
    (folder / "schema.json").write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in schema_lines) + "\n",
                                        encoding="utf-8")
    return folder


def test_appendix_a_train_line_byte_for_byte(tmp_path):
    folder = _write(tmp_path, "NER", [APPENDIX_RECORD], [["人物", "地理位置", "组织机构"], [], {}])
    convert_file(folder / "data.json", tmp_path / "out.json",
                 ConvertOptions(task="NER", language="zh", schema_path=str(folder / "schema.json"), split_num=6))
    instruction = build_instruction("NER", "zh", ["人物", "地理位置", "组织机构"], APPENDIX_TEXT)
    expected = json.dumps({"task": "NER", "source": "NER", "instruction": instruction,
                           "output": '{"人物": [], "地理位置": [], "组织机构": ["青岛海牛队", "广州松日队"]}'},
                          ensure_ascii=False) + "\n"
    assert (tmp_path / "out.json").read_text(encoding="utf-8") == expected


def test_appendix_a_test_line(tmp_path):
    folder = _write(tmp_path, "NER", [APPENDIX_RECORD], [["人物", "地理位置", "组织机构"], [], {}])
    convert_file(folder / "data.json", tmp_path / "out.json",
                 ConvertOptions(task="NER", schema_path=str(folder / "schema.json"), split="test"))
    line = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert list(line) == ["id", "task", "source", "instruction", "label", "record_index"]
    assert line["id"] == "e88d2b42f8ca14af1b77474fcb18671ed3cacc0c75cf91f63375e966574bd187"
    assert line["label"] == json.dumps(APPENDIX_RECORD["entity"], ensure_ascii=False)
    assert line["record_index"] == 0


EN_TEXT = "Alice Smith joined Acme Corp in Paris, and Bob Lee left Acme Corp."


@pytest.mark.parametrize("language", ["en", "zh"])
def test_ner_golden(language):
    record = {"text": EN_TEXT, "entity": [
        {"entity": "Acme Corp", "entity_type": "organization"}, {"entity": "Paris", "entity_type": "location"},
        {"entity": "Bob Lee", "entity_type": "person"}, {"entity": "Alice Smith", "entity_type": "person"},
        {"entity": "Acme Corp", "entity_type": "organization"}]}
    lines = iepile.convert([record], task="NER", language=language, schema=["person", "organization", "location",
                                                                            "date"])
    assert len(lines) == 1
    assert lines[0]["instruction"] == build_instruction("NER", language, ["date", "location", "organization", "person"],
                                                        EN_TEXT)
    assert lines[0]["output"] == ('{"date": [], "location": ["Paris"], "organization": ["Acme Corp"], '
                                  '"person": ["Alice Smith", "Bob Lee"]}')


def test_re_golden_uses_subject_object():
    record = {"text": EN_TEXT, "relation": [
        {"head": "Bob Lee", "relation": "works for", "tail": "Acme Corp"},
        {"head": "Alice Smith", "relation": "works for", "tail": "Acme Corp"},
        {"head": "Acme Corp", "relation": "located in", "tail": "Paris"}]}
    lines = iepile.convert([record], task="RE", language="en", schema=["works for", "located in", "founded by"])
    assert json.loads(lines[0]["instruction"])["schema"] == ["founded by", "located in", "works for"]
    assert lines[0]["output"] == ('{"founded by": [], "located in": [{"subject": "Acme Corp", "object": "Paris"}], '
                                  '"works for": [{"subject": "Alice Smith", "object": "Acme Corp"}, '
                                  '{"subject": "Bob Lee", "object": "Acme Corp"}]}')


def test_spo_golden_merges_items_sharing_a_predicate():
    record = {"text": EN_TEXT, "relation": [
        {"head": "Alice Smith", "relation": "in", "tail": "Paris", "head_type": "person", "tail_type": "location"},
        {"head": "Acme Corp", "relation": "in", "tail": "Paris", "head_type": "company", "tail_type": "location"}]}
    lines = iepile.convert([record], task="SPO", language="en",
                           schema=["person_in_location", "company_in_location"])
    schema = json.loads(lines[0]["instruction"])["schema"]
    assert schema == [{"subject_type": "company", "predicate": "in", "object_type": "location"},
                      {"subject_type": "person", "predicate": "in", "object_type": "location"}]
    assert json.loads(lines[0]["output"]) == {"in": [{"subject": "Acme Corp", "object": "Paris"},
                                                     {"subject": "Alice Smith", "object": "Paris"}]}


ZH_EVENT_TEXT = "消失的“外企光环”，5月份在华裁员900余人，香饽饽变“臭”了"
ZH_EVENT = {"text": ZH_EVENT_TEXT, "event": [{"event_trigger": "裁员", "event_type": "组织关系-裁员", "arguments": [
    {"argument": "900余人", "role": "裁员人数"}, {"argument": "5月份", "role": "时间"}]}]}
ZH_EVENT_SCHEMA = Schema(type_list=["组织关系-裁员", "组织关系-解散"], role_list=["裁员方", "时间", "裁员人数", "解散方"],
                         type_role_dict={"组织关系-裁员": ["裁员方", "时间", "裁员人数"], "组织关系-解散": ["解散方", "时间"]})


def test_ee_golden_spec_example():
    lines = iepile.convert([ZH_EVENT], task="EE", schema=ZH_EVENT_SCHEMA, split="test")
    schema = json.loads(lines[0]["instruction"])["schema"]
    assert schema == [{"event_type": "组织关系-裁员", "trigger": True, "arguments": ["时间", "裁员人数", "裁员方"]},
                      {"event_type": "组织关系-解散", "trigger": True, "arguments": ["时间", "解散方"]}]
    train = iepile.convert([ZH_EVENT], task="EE", schema=ZH_EVENT_SCHEMA)
    assert json.loads(train[0]["instruction"])["schema"] == schema
    assert train[0]["output"] == ('{"组织关系-裁员": [{"trigger": "裁员", "arguments": {"时间": "5月份", '
                                  '"裁员人数": "900余人", "裁员方": "NAN"}}], "组织关系-解散": []}')


def test_eet_and_eea_golden():
    eet = iepile.convert([ZH_EVENT], task="EET", schema=ZH_EVENT_SCHEMA)
    assert eet[0]["output"] == '{"组织关系-裁员": ["裁员"], "组织关系-解散": []}'
    eea_train = iepile.convert([ZH_EVENT], task="EEA", schema=ZH_EVENT_SCHEMA)
    eea_test = iepile.convert([ZH_EVENT], task="EEA", schema=ZH_EVENT_SCHEMA, split="test")
    item = {"event_type": "组织关系-裁员", "trigger": ["裁员"], "arguments": ["时间", "裁员人数", "裁员方"]}
    assert json.loads(eea_train[0]["instruction"])["schema"] == [item]
    assert json.loads(eea_test[0]["instruction"])["schema"] == [item]  # same shape in train and test
    assert eea_train[0]["output"] == '{"组织关系-裁员": [{"时间": "5月份", "裁员人数": "900余人", "裁员方": "NAN"}]}'


def test_ee_multi_value_arguments_follow_text_order_and_empty_trigger_becomes_nan():
    text = "甲公司和乙公司在北京裁员。"
    record = {"text": text, "event": [
        {"event_trigger": "", "event_type": "组织关系-裁员", "arguments": [
            {"argument": "乙公司", "role": "裁员方"}, {"argument": "甲公司", "role": "裁员方"},
            {"argument": "乙公司", "role": "裁员方"}, {"argument": "", "role": "时间"}]},
        {"event_trigger": "", "event_type": "组织关系-裁员", "arguments": []}]}
    out = iepile.convert([record], task="EE", schema=ZH_EVENT_SCHEMA, neg_ratio=0)
    assert json.loads(out[0]["output"]) == {"组织关系-裁员": [
        {"trigger": "NAN", "arguments": {"裁员方": ["甲公司", "乙公司"]}}]}


KG_TEXT = "明治天皇，名睦仁，是孝明天皇与英照皇太后之子。孝明天皇的配偶是英照皇太后与权大纳言。"


def test_kg_golden():
    record = {"text": KG_TEXT, "relation": [
        {"head": "明治天皇", "relation": "父母", "tail": "英照皇太后"},
        {"head": "明治天皇", "relation": "别名", "tail": "睦仁"},
        {"head": "明治天皇", "relation": "父母", "tail": "孝明天皇"},
        {"head": "孝明天皇", "relation": "配偶", "tail": "权大纳言"},
        {"head": "孝明天皇", "relation": "配偶", "tail": "英照皇太后"},
        {"head": "孝明天皇", "relation": "配偶", "tail": "英照皇太后"}]}
    lines = iepile.convert([record], task="KG", schema={"人物": ["别名", "父母", "配偶", "国籍"]})
    assert len(lines) == 1
    assert json.loads(lines[0]["instruction"])["schema"] == [{"entity_type": "人物",
                                                              "attributes": ["别名", "国籍", "父母", "配偶"]}]
    assert lines[0]["output"] == ('{"人物": {"明治天皇": {"别名": "睦仁", "父母": ["孝明天皇", "英照皇太后"]}, '
                                  '"孝明天皇": {"配偶": ["英照皇太后", "权大纳言"]}}}')


@pytest.mark.parametrize("task, schema", [
    ("NER", ["person"]), ("RE", ["works for"]), ("SPO", ["person_works for_company"]),
    ("EE", {"Attack": ["attacker"]}), ("EET", ["Attack"]), ("EEA", {"Attack": ["attacker"]}),
    ("KG", {"person": ["alias"]})])
def test_label_less_and_empty_input_work_for_every_task(task, schema):
    key = {"NER": "entity", "EE": "event", "EET": "event", "EEA": "event"}.get(task, "relation")
    for split in ("train", "test"):
        no_key = iepile.convert([{"text": "Nothing to see here."}], task=task, schema=schema, split=split)
        empty = iepile.convert([{"text": "Nothing to see here.", key: []}], task=task, schema=schema, split=split)
        if task == "EEA":  # nothing to ask without triggers
            assert no_key == [] and empty == []
            continue
        assert len(no_key) == len(empty) == 1
        if split == "test":
            assert "label" not in no_key[0] and empty[0]["label"] == "[]"
        else:
            assert all(v in ([], {}) for v in json.loads(empty[0]["output"]).values())


def test_duplicate_texts_keep_distinct_positions():
    record = {"text": EN_TEXT, "entity": []}
    lines = iepile.convert([record, record], task="NER", schema=["person"], split="test")
    assert [line["record_index"] for line in lines] == [0, 1]
    assert lines[0]["id"] == lines[1]["id"] == hashlib.sha256(EN_TEXT.encode()).hexdigest()


def test_split_num_groups_and_source_default(tmp_path):
    schema_lines = [[], [f"r{i:02d}" for i in range(49)], {}]
    folder = _write(tmp_path, "mydata", [{"text": "a b", "relation": [{"head": "a", "relation": "r07", "tail": "b"}]}],
                    schema_lines)
    convert_file(folder / "data.json", tmp_path / "o.json",
                 ConvertOptions(task="RE", schema_path=str(folder / "schema.json"), split="test"))
    lines = [json.loads(x) for x in (tmp_path / "o.json").read_text().splitlines()]
    sizes = [len(json.loads(line["instruction"])["schema"]) for line in lines]
    assert sizes == [4] * 11 + [5]
    assert {line["source"] for line in lines} == {"mydata"}
    assert all(line["label"] == lines[0]["label"] for line in lines)
