"""The annotation loop of examples/annotation_loop.py end to end on a tiny model: import a Label Studio export →
convert → fine-tune → pre-annotate as Label Studio predictions → corrected export → re-import → retrain."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from conftest import DATA_DIR as DATA
from tiny_model import build_tiny_model

LOOP = Path(__file__).resolve().parents[1] / "examples" / "annotation_loop.py"


def test_annotation_loop_runs_end_to_end(tmp_path):
    spec = importlib.util.spec_from_file_location("annotation_loop", LOOP)
    loop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loop)
    model = build_tiny_model(tmp_path / "tiny", seed=0)
    counts = loop.run(DATA, tmp_path / "loop", str(model), steps=2, dtype="fp32", batch_size=4, cutoff_len=256)
    gold = loop.gold_records(DATA, 0, 64)
    assert counts["1_imported"] == {"records": len(gold), "entities": sum(len(r["entity"]) for r in gold)}
    assert counts["2_trained"]["steps"] == 2 and counts["2_trained"]["instructions"] >= len(gold)
    new = loop.gold_records(DATA, 64, 16)
    assert counts["3_pre_annotated"]["tasks"] == len(new)
    assert counts["4_corrected"] == {"records": len(new), "entities": sum(len(r["entity"]) for r in new)}
    assert counts["5_retrained"]["steps"] == 2 and counts["5_retrained"]["instructions"] > \
        counts["2_trained"]["instructions"]
    corrected = json.loads((tmp_path / "loop" / "corrected_export.json").read_text(encoding="utf-8"))
    assert all("predictions" in t and "annotations" in t for t in corrected)
