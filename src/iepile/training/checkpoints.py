"""Checkpoints that are whole or absent, and a resume that takes the newest whole one and says what it skipped.

The stock Trainer writes ``checkpoint-N/`` file by file: killed meanwhile, the run leaves a folder that
``get_last_checkpoint`` picks and the resume fails ("Can't find a valid checkpoint"), and a truncated file fails
the resume with a SafetensorError traceback. Here:

* the Trainer writes into ``.incomplete-checkpoint-N/checkpoint-N`` (see :func:`staging_dir`); when every file is
  in, :func:`finish_checkpoint` adds ``iepile-complete.json`` (each file's size) and renames the folder into place,
  so ``checkpoint-N/`` only ever appears complete;
* :func:`newest_complete_checkpoint` takes the newest checkpoint that is complete and undamaged (the sizes its
  marker recorded, readable safetensors headers, whole torch archives) and names each one it skipped and why.
  A checkpoint of an older iepile (no marker) counts when its ``trainer_state.json``, which the Trainer writes
  last, is whole;
* :func:`remove_staging` removes what a killed run was writing (the next run starts clean).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from pathlib import Path

from iepile.fileio import write_text_atomic

COMPLETE_MARKER = "iepile-complete.json"
STAGING_PREFIX = ".incomplete-"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def staging_dir(checkpoints: Path, step: int) -> Path:
    """The run folder the Trainer is pointed at while it writes the checkpoint of ``step`` (hidden, and not named
    ``checkpoint-*``, so neither a resume nor checkpoint rotation ever takes it for a checkpoint)."""
    return checkpoints / f"{STAGING_PREFIX}checkpoint-{step}"


def finish_checkpoint(staging: Path, checkpoints: Path, step: int) -> Path:
    """Mark the fully written checkpoint complete and rename it into place (replacing an older one of that step)."""
    written = staging / f"checkpoint-{step}"
    files = {str(p.relative_to(written)): p.stat().st_size for p in sorted(written.rglob("*")) if p.is_file()}
    write_text_atomic(written / COMPLETE_MARKER, json.dumps({"step": step, "files": files}, indent=1) + "\n")
    final = checkpoints / written.name
    if final.exists():
        old = staging / "replaced"
        os.replace(final, old)
    os.replace(written, final)
    shutil.rmtree(staging, ignore_errors=True)
    return final


def remove_staging(checkpoints: Path) -> list[str]:
    """Remove checkpoints a stopped run was writing; returns a note for each."""
    notes = []
    for folder in sorted(checkpoints.glob(f"{STAGING_PREFIX}checkpoint-*")):
        shutil.rmtree(folder, ignore_errors=True)
        notes.append(f"removed {folder}: a checkpoint still being written when the run stopped")
    return notes


def checkpoint_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be resumed from (incomplete or damaged), or None."""
    marker = folder / COMPLETE_MARKER
    if marker.is_file():
        try:
            recorded = json.loads(marker.read_text(encoding="utf-8"))["files"]
        except (ValueError, KeyError, TypeError):
            return f"its {COMPLETE_MARKER} is damaged"
        for name, size in recorded.items():
            path = folder / name
            if not path.is_file():
                return f"{name} is missing"
            if path.stat().st_size != size:
                return f"{name} is {path.stat().st_size} bytes, {size} when it was saved (truncated or damaged)"
    elif not _whole_json(folder / "trainer_state.json"):
        return "incomplete: no completion marker and no trainer_state.json (the run stopped while writing it)"
    return _unreadable_file(folder)


def _whole_json(path: Path) -> bool:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def _unreadable_file(folder: Path) -> str | None:
    """A weight or state file that cannot be read: a safetensors header that does not fit the file, a torch
    archive without its end record (what a truncation leaves)."""
    from safetensors import SafetensorError, safe_open

    for path in sorted(folder.rglob("*.safetensors")):
        try:
            with safe_open(str(path), "pt") as handle:
                handle.keys()
        except (SafetensorError, OSError, ValueError) as error:
            return f"{path.name} cannot be read ({error})"
    for pattern in ("*.pt", "*.pth", "*.bin"):
        for path in sorted(folder.rglob(pattern)):
            if not zipfile.is_zipfile(path):
                return f"{path.name} is not a whole torch archive (truncated?)"
    return None


def newest_complete_checkpoint(checkpoints: Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint that can be resumed from (None if there is none) and a note per newer one skipped."""
    found = sorted(((int(m.group(1)), p) for p in checkpoints.iterdir() if p.is_dir()
                    for m in [_CHECKPOINT.match(p.name)] if m), reverse=True)
    notes = []
    for _, folder in found:
        problem = checkpoint_problem(folder)
        if problem is None:
            return folder, notes
        notes.append(f"skipped {folder}: {problem}")
    return None, notes
