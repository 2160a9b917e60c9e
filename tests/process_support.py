"""Helpers of the fault tests: wait for a state of a real process, read its /proc state, find its children."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

DEADLINE_SECONDS = 300  # a bound on waiting for a state, never a measured duration


def wait_for(condition, what: str, process: subprocess.Popen | None = None, log: Path | None = None) -> None:
    """Poll until ``condition()`` holds; fail (naming ``what``) if the deadline passes or ``process`` ends first
    (with what it wrote to its stderr pipe, or to ``log``)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if process is not None and process.poll() is not None:
            said = log.read_text() if log else process.stderr.read() if process.stderr else ""
            pytest.fail(f"the process ended (exit {process.returncode}) before {what}: {said!r}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def process_state(pid: int) -> str | None:
    """The /proc state letter of ``pid`` (``Z`` for a zombie), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if ppid == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    return process_state(pid) not in (None, "Z")
