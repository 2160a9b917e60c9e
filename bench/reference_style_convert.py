"""Baseline for bench/convert.py: the reference converter's algorithm (iepile-behaviour.md §1-§2), re-implemented
for NER and EE only, written the way the reference is: all records in memory, labels in Python sets, numpy Bernoulli
draws and ``random.sample``, one ``json.dumps`` per output line, everything written at the end.

    python bench/reference_style_convert.py SRC DST --task NER|EE --schema schema.json [--split-num N] [...]
"""

from __future__ import annotations

import argparse
import json
import random

import numpy as np

random.seed(42)
np.random.seed(42)

SENTENCES = {
    "NER": {"en": "You are an expert in named entity recognition. Please extract entities that match the schema "
                  "definition from the input. Return an empty list if the entity type does not exist. Please respond "
                  "in the format of a JSON string."},
    "EE": {"zh": "你是专门进行事件提取的专家。请从input中抽取出符合schema定义的事件，不存在的事件返回空列表，不存在的论元返回NAN，"
                 "如果论元存在多值请返回列表。请按照JSON字符串的格式回答。"},
}


def split_total_by_num(total, split_num):
    if split_num == -1:
        return [total]
    full = max(len(total) // split_num, 1) * split_num
    chunks = [total[i:i + split_num] for i in range(0, full, split_num)]
    rest = total[full:]
    if len(rest) >= max(1, split_num // 2):
        chunks.append(rest)
    elif rest:
        chunks[-1].extend(rest)
    return chunks


def bernoulli_count(n, p):
    return int(np.random.binomial(1, p, n).sum())


def ner_records(record, type_set, split_num, language):
    seen, entities = set(), []
    for ent in record["entity"]:
        key = (ent["entity"], ent["entity_type"])
        if key not in seen:
            seen.add(key)
            entities.append(ent)
    positive = set(e["entity_type"] for e in entities)
    negative = type_set - positive
    k = bernoulli_count(len(type_set), 1.0)
    if not positive:
        k = max(k, 1)
    k = min(k, len(negative))
    total = sorted(random.sample(list(negative), k) + list(positive))
    for chunk in split_total_by_num(total, split_num):
        output = {}
        for t in chunk:
            values = [e["entity"] for e in entities if e["entity_type"] == t]
            sorted(values, key=lambda v: record["text"].find(v))  # the reference's dead sort
            output[t] = values
        yield chunk, output


def ee_records(record, type_role, split_num, language):
    positive = set(e["event_type"] for e in record["event"])
    negative = set(type_role) - positive
    k = min(max(bernoulli_count(len(type_role), 1.0), 0 if positive else 1), len(negative))
    items = []
    for t in list(random.sample(list(negative), k)) + list(positive):
        roles = set(type_role[t])
        if t in positive:
            gold = set(a["role"] for e in record["event"] if e["event_type"] == t for a in e["arguments"])
            others = roles - gold
            n = min(bernoulli_count(len(roles), 1.0), len(others))
            chosen = list(gold) + random.sample(list(others), n)
        else:
            chosen = random.sample(list(roles), min(max(bernoulli_count(len(roles), 1.0), 1), len(roles)))
        items.append({"event_type": t, "trigger": True, "arguments": chosen})
    items.sort(key=lambda x: (x["event_type"], x["arguments"]))
    for chunk in split_total_by_num(items, split_num):
        output = {}
        for item in chunk:
            events = []
            for e in record["event"]:
                if e["event_type"] != item["event_type"]:
                    continue
                args = {}
                for a in e["arguments"]:
                    args.setdefault(a["role"], set()).add(a["argument"])
                filled = {r: (list(args[r])[0] if len(args[r]) == 1 else list(args[r])) if r in args else "NAN"
                          for r in item["arguments"]}
                events.append({"trigger": e["event_trigger"] or "NAN",
                               "arguments": filled if any(r in args for r in item["arguments"]) else {}})
            events.sort(key=lambda ev: record["text"].find(ev["trigger"]))
            output[item["event_type"]] = events
        yield chunk, output


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--task")
    parser.add_argument("--language")
    parser.add_argument("--schema")
    parser.add_argument("--split-num", type=int, default=4)
    args = parser.parse_args()
    lines = open(args.schema, encoding="utf-8").read().splitlines()
    type_list, _, type_role = (json.loads(x) for x in lines[:3])
    source = args.src.split("/")[-2]
    records = [json.loads(line) for line in open(args.src, encoding="utf-8")]
    results = []
    for record in records:
        if args.task == "NER":
            pairs = ner_records(record, set(type_list), args.split_num, args.language)
        else:
            pairs = ee_records(record, type_role, args.split_num, args.language)
        for chunk, output in pairs:
            instruction = json.dumps({"instruction": SENTENCES[args.task][args.language], "schema": chunk,
                                      "input": record["text"]}, ensure_ascii=False)
            results.append({"task": args.task, "source": source, "instruction": instruction,
                            "output": json.dumps(output, ensure_ascii=False)})
    with open(args.dst, "w", encoding="utf-8") as out:
        for result in results:
            out.write(json.dumps(result, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
