"""Faults: a command killed (``kill -9``, SIGTERM), a full disk, an output folder that is missing or read-only.

Every case runs the real ``iepile`` in its own process and checks what is left on disk: the previous output intact,
no torn output, no worker process alive, temporaries removed (or, after ``kill -9``, removed by the next run).
A process is stopped at a known point without timing: its input is a pipe the test holds open, so the command is
blocked reading it when the signal comes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "en" / "NER"
DEADLINE_SECONDS = 120  # a bound on waiting for a state, never a measured duration
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def iepile_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "iepile.cli", *args]


def wait_for(condition, what: str, process: subprocess.Popen | None = None) -> None:
    """Poll until ``condition()`` holds; fail (naming ``what``) if the deadline passes or ``process`` ends first."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"the process ended (exit {process.returncode}) before {what}: {process.stderr.read()!r}")
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


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


@pytest.fixture
def started():
    """Processes a test starts (and the workers they spawn); any still alive at the end are killed, by pid."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


# ---- convert: kill -9 and SIGTERM mid-run, with two worker processes ------------------------------------------------

CONVERT = ["--task", "NER", "--language", "en", "--schema", str(EXAMPLES / "schema.json"), "--quiet"]


@pytest.fixture
def records(tmp_path) -> Path:
    """About 3 MB of records: six read blocks, so ``-j 2`` has converted and written five before it waits for more."""
    path = tmp_path / "records.json"
    path.write_bytes((EXAMPLES / "train.json").read_bytes() * 200)
    return path


def convert_blocked_on_input(records: Path, out: Path, started: list[int]) -> tuple[subprocess.Popen, list[int]]:
    """``iepile convert - OUT -j 2`` fed all records but the end of its input: blocked reading, part of the output
    written to its temporary, the two workers idle (waiting for work, as they would be between batches)."""
    process = subprocess.Popen(iepile_command("convert", "-", str(out), *CONVERT, "-j", "2"), env=ENV,
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started.append(process.pid)
    process.stdin.write(records.read_bytes())
    process.stdin.flush()
    wait_for(lambda: len(children_of(process.pid)) >= 2, "the two workers started", process)
    workers = children_of(process.pid)
    started.extend(workers)
    temporary = out.parent / f".{out.name}.tmp-{process.pid}"
    wait_for(lambda: temporary.exists() and temporary.stat().st_size > 0, "part of the output was written", process)
    wait_for(lambda: all(process_state(pid) == "S" for pid in workers), "the workers were idle", process)
    return process, workers


def test_convert_killed_with_9_keeps_the_old_output_its_workers_die_and_a_rerun_cleans_up(records, tmp_path,
                                                                                          started):
    out = tmp_path / "out.json"
    subprocess.run(iepile_command("convert", str(EXAMPLES / "train.json"), str(out), *CONVERT), env=ENV, check=True)
    previous = out.read_bytes()
    process, workers = convert_blocked_on_input(records, out, started)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    wait_for(lambda: not any(alive(pid) for pid in workers), "the workers ended with their parent")
    assert out.read_bytes() == previous
    leftover = temporaries(tmp_path)
    assert leftover == [f".out.json.tmp-{process.pid}"]  # hidden: no glob of outputs (*.json) picks it up
    rerun = subprocess.run(iepile_command("convert", str(records), str(out), *CONVERT, "-j", "2"), env=ENV,
                           capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert temporaries(tmp_path) == []  # the dead run's temporary is removed by the next write of the same output
    assert out.read_bytes().count(b"\n") == 200 * previous.count(b"\n")


def test_convert_stopped_with_sigterm_removes_its_temporary_and_its_workers(records, tmp_path, started):
    out = tmp_path / "out.json"
    out.write_text("previous\n", encoding="utf-8")
    process, workers = convert_blocked_on_input(records, out, started)
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait() == 128 + signal.SIGTERM
    wait_for(lambda: not any(alive(pid) for pid in workers), "the workers ended")
    assert "Traceback" not in process.stderr.read().decode()
    assert out.read_text(encoding="utf-8") == "previous\n"
    assert temporaries(tmp_path) == []
