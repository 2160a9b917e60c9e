"""Conversion throughput and peak memory: iepile convert (1 and 2 workers) against a reference-style baseline.

    python bench/convert.py [--data ../shared/data] [--copies 8]

Inputs are built from real data: CoNLL-2003 train repeated ``--copies`` times (112,328 NER records for 8) and the
DuEE 1.0 dev set with its 65 event types (EE). The baseline, ``bench/reference_style_convert.py``, re-implements the
reference converter's algorithm as iepile-behaviour.md describes it (everything in memory, Python sets, numpy
Bernoulli draws, ``json.dumps`` per line, written at the end); each run is a separate process so that peak memory
(max RSS) is its own. Output: records/s and the ratio against the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def build_inputs(data: Path, work: Path, copies: int) -> list[dict]:
    from iepile.data.formats import read_records
    from iepile.data.formats.base import ReadOptions, ReadStats

    conll = list(read_records(data / "en/ner/conll2003/train.txt", "conll", ReadOptions(task="NER", language="en"),
                              ReadStats()))
    ner_dir = work / "conll2003"
    ner_dir.mkdir()
    with open(ner_dir / "train.json", "w", encoding="utf-8") as out:
        for _ in range(copies):
            out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in conll)
    types = sorted({e["entity_type"] for r in conll for e in r["entity"]})
    (ner_dir / "schema.json").write_text(f"{json.dumps(types)}\n[]\n{{}}\n")

    duee_stats = ReadStats()
    duee = list(read_records(data / "zh/ee/duee/dev.json", "duee", ReadOptions(task="EE", language="zh"), duee_stats))
    ee_dir = work / "duee"
    ee_dir.mkdir()
    with open(ee_dir / "dev.json", "w", encoding="utf-8") as out:
        out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in duee)
    type_roles = {}
    for line in (data / "zh/ee/duee/event_schema.json").read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            type_roles[item["event_type"]] = [r["role"] for r in item["role_list"]]
    roles = list(dict.fromkeys(r for rs in type_roles.values() for r in rs))
    (ee_dir / "schema.json").write_text("\n".join(json.dumps(x, ensure_ascii=False)
                                                  for x in (list(type_roles), roles, type_roles)) + "\n")
    return [
        {"name": f"NER CoNLL-2003 train x{copies}", "task": "NER", "language": "en", "src": ner_dir / "train.json",
         "schema": ner_dir / "schema.json", "records": len(conll) * copies, "split_num": 6},
        {"name": "EE DuEE 1.0 dev (65 types)", "task": "EE", "language": "zh", "src": ee_dir / "dev.json",
         "schema": ee_dir / "schema.json", "records": len(duee), "split_num": 4},
    ]


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONHASHSEED": "0"})
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2, help="runs per configuration; the fastest is kept")
    args = parser.parse_args()
    iepile_cli = [sys.executable, "-m", "iepile.cli", "convert"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        jobs = build_inputs(args.data.resolve(), work, args.copies)
        print(f"{'job':34} {'runner':22} {'seconds':>8} {'records/s':>10} {'x baseline':>10} {'peak MB':>8}")
        for job in jobs:
            common = [str(job["src"]), str(work / "out.json"), "--task", job["task"], "--language", job["language"],
                      "--schema", str(job["schema"]), "--split-num", str(job["split_num"])]
            runners = [("reference-style", [sys.executable, str(HERE / "reference_style_convert.py"), *common]),
                       ("iepile --workers 1", [*iepile_cli, *common, "--workers", "1"]),
                       ("iepile --workers 2", [*iepile_cli, *common, "--workers", "2"])]
            baseline = None
            for runner, command in runners:
                # peak RSS of children is a running maximum, so measure each runner in a fresh interpreter
                runs = [json.loads(subprocess.run([sys.executable, __file__, "--one", json.dumps(command)],
                                                  check=True, capture_output=True, text=True).stdout)
                        for _ in range(args.repeat)]
                seconds = min(r[0] for r in runs)
                peak = max(r[1] for r in runs)
                baseline = baseline or seconds
                rate = job["records"] / seconds
                print(f"{job['name']:34} {runner:22} {seconds:8.2f} {rate:10.0f} {baseline / seconds:10.2f} "
                      f"{peak:8.0f}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(timed(json.loads(sys.argv[2]))))
    else:
        main()
