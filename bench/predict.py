"""Prediction throughput and parse failures on CoNLL-2003 test instructions with the default model.

    python bench/predict.py [--data ../shared/data] [--limit 48] [--batch-size 16] [--max-new-tokens 128]
                            [--model DIR] [--instructions FILE.json] [--modes batched_whole_prompts,batched,...]

Up to four ways over the SAME instructions, one model load, one run:

* one_at_a_time: batch size 1, the reference's way (``src/inference.py``);
* batched_whole_prompts: left-padded batches, every row's whole prompt run (iepile before 2026-12-02);
* batched: batches whose shared prompt prefix is computed once (``iepile predict``);
* batched_constrained: the same with ``--constrain``.

For each: instructions/s, new tokens/s, the parse-failure rate under the reference's strict ``json.loads`` and under
our lenient parser, and the share of extracted strings that do not occur in the input (hallucinated). The records
are CoNLL-2003 test sentences (tokens joined by spaces), converted with ``iepile.convert(..., task="NER",
language="en", split="test", split_num=6)``; the first ``--limit`` instructions are used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
TYPES = ["person", "location", "organisation", "misc"]


def conll_records(path: Path) -> list[dict]:
    """CoNLL-2003 sentences as unified NER records, read by iepile's own CoNLL reader."""
    from iepile.data.formats import read_records
    from iepile.data.formats.base import ReadOptions, ReadStats

    return list(read_records(path, "conll", ReadOptions(task="NER", language="en"), ReadStats()))


def instructions(data: Path, limit: int) -> list[dict]:
    import iepile

    records = conll_records(data / "en/ner/conll2003/test.txt")
    lines = iepile.convert(records[: limit * 2], task="NER", language="en", split="test", split_num=6, schema=TYPES)
    return lines[:limit]


def measure(generator, lines: list[dict]) -> dict:
    from iepile.inference.answers import parse_answer
    from iepile.instructions import parse_instruction
    from iepile.inference.generators import answer_instructions

    generator.stats.__init__()
    started = time.perf_counter()
    answers = answer_instructions(generator, [l["instruction"] for l in lines], [l["task"] for l in lines])
    seconds = time.perf_counter() - started
    strict = [parse_answer(a, repair=False) for a in answers]
    lenient = [parse_answer(a) for a in answers]
    strings, hallucinated = 0, 0
    for line, parsed in zip(lines, lenient):
        text = parse_instruction(line["instruction"])["input"]
        for values in (parsed.value or {}).values():
            for value in values if isinstance(values, list) else []:
                if isinstance(value, str):
                    strings += 1
                    hallucinated += value not in text
    return {
        "instructions": len(lines), "seconds": round(seconds, 2),
        "instructions_per_s": round(len(lines) / seconds, 3),
        "new_tokens_per_s": round(generator.stats.new_tokens / seconds, 1),
        "strict_parse_failure_rate": round(sum(p.status == "failed" for p in strict) / len(lines), 4),
        "lenient_parse_failure_rate": round(sum(p.status == "failed" for p in lenient) / len(lines), 4),
        "extracted_strings": strings,
        "hallucination_rate": round(hallucinated / strings, 4) if strings else 0.0,
        "example_answer": answers[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--limit", type=int, default=48, help="instructions per mode")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--model", default=None, help="model folder (default: the default model)")
    parser.add_argument("--instructions", type=Path, default=None,
                        help="test instruction file to take the first --limit lines of (default: CoNLL-2003)")
    parser.add_argument("--modes", default="one_at_a_time,batched_whole_prompts,batched,batched_constrained")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "predict.json")
    args = parser.parse_args()
    # mode → (batch size, constrained, shared prefix)
    modes = {"one_at_a_time": (1, False, True), "batched_whole_prompts": (args.batch_size, False, False),
             "batched": (args.batch_size, False, True), "batched_constrained": (args.batch_size, True, True)}
    unknown = set(args.modes.split(",")) - set(modes)
    if unknown:
        parser.error(f"--modes: unknown {', '.join(sorted(unknown))}; choose from {', '.join(modes)}")

    import torch

    from iepile.inference.generators import TransformersGenerator

    if args.instructions:
        with open(args.instructions, encoding="utf-8") as handle:
            lines = [json.loads(line) for line, _ in zip(handle, range(args.limit))]
    else:
        lines = instructions(args.data, args.limit)
    generator = TransformersGenerator.load(args.model, max_new_tokens=args.max_new_tokens, batch_size=1)
    results = {}
    for name in args.modes.split(","):
        generator.batch_size, generator.constrain, share_prefix = modes[name]
        generator.MIN_SHARED_PREFIX = TransformersGenerator.MIN_SHARED_PREFIX if share_prefix else 10 ** 9
        results[name] = measure(generator, lines)
        print(f"{name:22s} {results[name]['instructions_per_s']:7.3f} instr/s  "
              f"strict-fail {results[name]['strict_parse_failure_rate']:.3f}  "
              f"lenient-fail {results[name]['lenient_parse_failure_rate']:.3f}  "
              f"hallucinated {results[name]['hallucination_rate']:.3f}", flush=True)
    baseline = next(name for name in ("one_at_a_time", "batched_whole_prompts") if name in results)
    for name in results:
        results[name][f"speedup_vs_{baseline}"] = round(
            results[name]["instructions_per_s"] / results[baseline]["instructions_per_s"], 2)
    report = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "python": platform.python_version(), "torch": torch.__version__},
              "model": args.model or "default (SmolLM2-135M-Instruct)",
              "instructions": str(args.instructions or "CoNLL-2003 test"), "dtype": str(generator.model.dtype),
              "limit": args.limit, "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
              "results": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v.get(f"speedup_vs_{baseline}") for k, v in results.items()}), file=sys.stderr)


if __name__ == "__main__":
    main()
