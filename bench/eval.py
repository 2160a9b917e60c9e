"""Evaluation throughput and peak memory: ``iepile eval`` against a naive reference-style scorer.

    python bench/eval.py [--data ../shared/data] [--lines 100000]

The prediction file is built from real data: CoNLL-2003 (NER, en), DuEE 1.0 dev (EE, zh, 65 event types) and
CoNLL-2004 (RE, en), converted with ``split=test``; each answer is the gold training target of its group, and about
8% are corrupted (truncated, wrapped in a code fence or chatter, an item dropped, a type swapped, a span cut, garbage).
Records are repeated (with new ``record_index`` values) until the file has ``--lines`` lines.

The baseline mimics the reference scorer (iepile-behaviour.md §3): read every line with ``json.loads`` into memory,
group by ``source + id``, ``json.loads`` each answer, build tuples, and match with the reference's list-removal loop.
Each scorer runs in its own process, so peak memory (max RSS) is its own. Output: lines/s, seconds, peak MB and the
ratio against the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


# -- building the prediction file --------------------------------------------------------------------------------

def build_predictions(data: Path, target_lines: int, out: Path) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from eval_support import conll_records, duee_records, duee_schema, perfect_predictions, pfn_records

    ner = conll_records(data / "en/ner/conll2003/test.txt") + conll_records(data / "en/ner/conll2003/dev.txt")
    pools = [
        perfect_predictions(ner, "NER", ["person", "location", "organisation", "misc"], split_num=6,
                            source="conll2003"),
        perfect_predictions(duee_records(data / "zh/ee/duee/dev.json"), "EE",
                            duee_schema(data / "zh/ee/duee/event_schema.json"), language="zh", source="duee"),
        perfect_predictions(conll04 := pfn_records(data / "en/re/conll04/test.json"), "RE",
                            sorted({r["relation"] for rec in conll04 for r in rec["relation"]}), source="conll04"),
    ]
    rng = random.Random(0)
    written = corrupted = 0
    with open(out, "w", encoding="utf-8") as handle:
        copy = 0
        while written < target_lines:
            for pool in pools:
                for line in pool:
                    if written >= target_lines:
                        break
                    line = dict(line, record_index=line["record_index"] + copy * 100_000)
                    if rng.random() < 0.08:
                        line["output"] = corrupt(line["output"], rng)
                        corrupted += 1
                    handle.write(json.dumps(line, ensure_ascii=False) + "\n")
                    written += 1
            copy += 1
    return {"lines": written, "corrupted": corrupted}


def corrupt(output: str, rng: random.Random) -> str:
    answer = json.loads(output)
    kind = rng.randrange(6)
    if kind == 0:
        return output[: max(1, len(output) * 2 // 3)]                       # truncated
    if kind == 1:
        return f"```json\n{output}\n```" if rng.random() < 0.5 else f"Here you go: {output} Hope this helps."
    if kind == 5:
        return "I could not find any entities."                              # garbage
    keys = [k for k, v in answer.items() if v]
    if not keys:
        return output
    key = rng.choice(keys)
    values = answer[key]
    if kind == 2:
        values.pop(rng.randrange(len(values)))                               # missed item
    elif kind == 3 and len(answer) > 1:
        other = rng.choice([k for k in answer if k != key])                  # wrong type
        answer[other] = list(answer[other]) + [values.pop()]
    elif kind == 4 and isinstance(values[0], str) and len(values[0]) > 2:
        values[0] = values[0][:-1]                                           # boundary
    return json.dumps(answer, ensure_ascii=False)


# -- the two scorers ---------------------------------------------------------------------------------------------------

def run_ours(path: str, mode: str) -> dict:
    from iepile.evaluate import EvalOptions, evaluate_file

    result = evaluate_file(path, EvalOptions(mode=mode, allow_missing=True))  # copies leave record_index gaps
    return {name: round(row["f1"], 2) for name, row in result["summary"].items()}


def run_baseline(path: str) -> dict:
    """Reference-style: everything in memory, group by source + id, json.loads per answer, list-removal matching."""
    lines = [json.loads(line) for line in open(path, encoding="utf-8")]
    groups: dict[str, dict] = {}
    for line in lines:
        key = line.get("source", "None") + line["id"]
        group = groups.setdefault(key, {"task": line["task"], "label": json.loads(line["label"]), "outputs": []})
        group["outputs"].append(line["output"])
    counts: dict[str, list[int]] = {}
    for group in groups.values():
        preds = []
        for output in group["outputs"]:
            try:
                answer = json.loads(output)
            except json.JSONDecodeError:
                continue
            if isinstance(answer, dict):
                preds.extend(reference_tuples(group["task"], answer))
        gold = gold_tuples(group["task"], group["label"])
        tally = counts.setdefault(group["task"], [0, 0, 0])
        tally[1] += len(preds)
        tally[2] += len(gold)
        for item in preds:
            if item in gold:
                tally[0] += 1
                gold.remove(item)
    return {task: f1(*tally) for task, tally in counts.items()}


def reference_tuples(task: str, answer: dict) -> list:
    tuples = []
    for key, values in answer.items():
        for value in values if isinstance(values, list) else []:
            if task == "NER" and isinstance(value, str):
                tuples.append((value, key))
            elif task == "RE" and isinstance(value, dict):
                tuples.append((value.get("subject", ""), key, value.get("object", "")))
            elif task == "EE" and isinstance(value, dict) and isinstance(value.get("arguments", {}), dict):
                tuples.append((key, value.get("trigger", "")))
    return tuples


def gold_tuples(task: str, label: list) -> list:
    if task == "NER":
        return [(e["entity"], e["entity_type"]) for e in label]
    if task == "RE":
        return [(r["head"], r["relation"], r["tail"]) for r in label]
    return [(e["event_type"], e["event_trigger"]) for e in label]


def f1(tp: int, pred: int, gold: int) -> float:
    p = round(100 * tp / pred, 2) if pred else 0.0
    r = round(100 * tp / gold, 2) if gold else 0.0
    return round(2 * p * r / (p + r), 2) if p + r else 0.0


# -- driver --------------------------------------------------------------------------------------------------------------

def peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it restarts at exec, so the parent's size
    does not leak into the child's figure)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(which: str, path: str) -> dict:
    """Run one scorer in a child process; seconds and max RSS are the child's own."""
    code = ("import json, sys, time; sys.path.insert(0, %r); import eval as bench; t = time.perf_counter(); "
            "scores = %s; seconds = time.perf_counter() - t; "
            "print(json.dumps({'seconds': seconds, 'peak_mb': bench.peak_mb(), 'f1': scores}))") % (str(HERE), {"baseline": f"bench.run_baseline({path!r})",
                                                "iepile": f"bench.run_ours({path!r}, 'iepile')",
                                                "strict": f"bench.run_ours({path!r}, 'strict')"}[which])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "predictions.jsonl")
        started = time.perf_counter()
        built = build_predictions(args.data, args.lines, Path(path))
        print(f"built {built['lines']:,} lines ({built['corrupted']:,} corrupted answers) in "
              f"{time.perf_counter() - started:.1f} s; {Path(path).stat().st_size / 1e6:.1f} MB")
        baseline = measure("baseline", path)
        rows = [("baseline (reference-style)", baseline)] + [(f"iepile eval --mode {m}", measure(m, path))
                                                            for m in ("iepile", "strict")]
    print(f"{'scorer':<28}{'seconds':>9}{'lines/s':>11}{'peak MB':>9}{'speed vs baseline':>19}  F1")
    for name, row in rows:
        print(f"{name:<28}{row['seconds']:>9.2f}{built['lines'] / row['seconds']:>11,.0f}{row['peak_mb']:>9.0f}"
              f"{baseline['seconds'] / row['seconds']:>18.2f}x  {row['f1']}")


if __name__ == "__main__":
    main()
