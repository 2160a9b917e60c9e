"""Shared fixtures: where the real benchmark data lives (../shared/data, never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("IEPILE_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.exists():
        pytest.fail(f"benchmark data not found at {DATA_DIR}; set IEPILE_DATA")
    return DATA_DIR
