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
from pathlib import Path

import pytest

from process_support import alive, children_of, process_state, wait_for

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "en" / "NER"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def iepile_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "iepile.cli", *args]


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


# ---- import and clean: kill -9 with their new outputs complete but not yet renamed --------------------------------

STOP_BEFORE_RENAME = """
import os, signal, sys
from iepile.cli import main

outputs, replace = os.path.abspath(sys.argv[1]), os.replace

def stop_before_rename(src, dst, *args, **kwargs):
    if os.path.dirname(os.path.abspath(dst)) == outputs:
        os.kill(os.getpid(), signal.SIGSTOP)
    return replace(src, dst, *args, **kwargs)

os.replace = stop_before_rename
sys.argv = ["iepile", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize("command, produced", [
    (["import", "{conll}", "{out}/records.json", "--format", "conll"], ["records.json", "records.schema.json"]),
    (["clean", str(EXAMPLES / "train.json"), "{out}/records.json"], ["records.json", "records.json.removed.jsonl"]),
])
def test_import_and_clean_killed_with_9_before_renaming_keep_every_old_output(tmp_path, started, command, produced):
    """The worst moment: every new output written to its temporary, the first rename about to happen. The process
    is stopped there (SIGSTOP from a wrapper around ``os.replace``, so no timing) and killed with -9."""
    conll = tmp_path / "in.conll"
    conll.write_text("Alice B-PER\nworks O\nin O\nParis B-LOC\n\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    args = [a.format(conll=conll, out=out) for a in command]
    for name in produced:
        (out / name).write_text(f"previous {name}\n", encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-c", STOP_BEFORE_RENAME, str(out), *args], env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started.append(process.pid)
    wait_for(lambda: process_state(process.pid) == "T", "the outputs were written, before the first rename",
             process)
    assert temporaries(out) == sorted(f".{name}.tmp-{process.pid}" for name in produced)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert {name: (out / name).read_text(encoding="utf-8") for name in produced} == {
        name: f"previous {name}\n" for name in produced}
    rerun = subprocess.run(iepile_command(*args), env=ENV, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert temporaries(out) == []  # the dead run's temporaries are removed by the next write of the same outputs
    assert all(not (out / name).read_text(encoding="utf-8").startswith("previous") for name in produced)
    assert json.loads((out / "records.json").read_text(encoding="utf-8").splitlines()[0])["text"]


# ---- outputs on a full disk, in a read-only or missing folder ----------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A real 64 KB file system (tmpfs; needs root and mount), so that a full disk is a real ENOSPC."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to make a full disk: {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def fill(disk: Path) -> None:
    """Write until the disk is full (unbuffered: nothing left to flush on close)."""
    with open(disk / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 1024)
        except OSError:
            pass


def read_only(disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)


@pytest.fixture
def predictions(tmp_path) -> Path:
    text = "Alice met Bob in Paris ."
    line = {"id": "1", "task": "NER", "source": "demo", "record_index": 0,
            "instruction": json.dumps({"instruction": "x", "schema": ["person", "location"], "input": text}),
            "label": json.dumps([{"entity": "Alice", "entity_type": "person"}]),
            "output": json.dumps({"person": ["Alice"], "location": []})}
    path = tmp_path / "pred.json"
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    return path


def iepile(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(iepile_command(*args), env=ENV, capture_output=True, text=True)


def test_eval_on_a_full_disk_keeps_the_previous_results_and_says_which_file(predictions, small_disk):
    (small_disk / "result.json").write_text("previous result\n")
    (small_disk / "report.html").write_text("previous report\n")
    fill(small_disk)
    for option, name in (("--json", "result.json"), ("--report", "report.html")):
        run = iepile("eval", str(predictions), option, str(small_disk / name))
        assert run.returncode == 1
        assert "Traceback" not in run.stderr
        assert f"could not write {small_disk / name}: No space left on device" in " ".join(run.stderr.split())
    assert (small_disk / "result.json").read_text() == "previous result\n"
    assert (small_disk / "report.html").read_text() == "previous report\n"
    assert temporaries(small_disk) == []


@pytest.mark.parametrize("command, second", [("clean", "records.json.removed.jsonl"),
                                             ("import", "records.schema.json")])
def test_clean_and_import_on_a_full_disk_keep_the_previous_output_and_say_which_files(small_disk, tmp_path, command,
                                                                                      second):
    output = small_disk / "records.json"
    output.write_text("previous records\n")
    fill(small_disk)
    if command == "clean":
        run = iepile("clean", str(EXAMPLES / "train.json"), str(output))
    else:
        conll = tmp_path / "in.conll"
        conll.write_text("Alice B-PER\nworks O\n\n" * 2000, encoding="utf-8")
        run = iepile("import", str(conll), str(output), "--format", "conll")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert (f"could not write {output} and {small_disk / second}: No space left on device (nothing was replaced"
            in " ".join(run.stderr.split()))
    assert output.read_text() == "previous records\n"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "records.json"]  # no temporary, no 2nd file


def test_eval_into_a_read_only_folder_fails_before_scoring(predictions, small_disk):
    read_only(small_disk)
    run = iepile("eval", str(predictions), "--json", str(small_disk / "result.json"))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert f"--json {small_disk / 'result.json'}: the folder {small_disk} is not writable" in " ".join(
        run.stderr.split())
    assert "NER" not in run.stdout  # no score table: the check came first


@pytest.mark.parametrize("command", ["extract", "predict"])
@pytest.mark.parametrize("where", ["missing", "read-only"])
def test_output_folder_is_checked_before_the_model_loads(predictions, small_disk, tmp_path, where, command):
    """The model path does not exist: reaching it would be a model error, so the folder error proves the order."""
    if where == "read-only":
        read_only(small_disk)
        output, reason = small_disk / "out.jsonl", "is not writable"
    else:
        output, reason = tmp_path / "missing" / "out.jsonl", "does not exist"
    if command == "extract":
        run = iepile("extract", "--text", "Alice met Bob.", "--schema", '["person"]', "-o", str(output),
                     "--model", str(tmp_path / "no-model"))
        option = "--output"
    else:
        run = iepile("predict", str(predictions), str(output), "--model", str(tmp_path / "no-model"))
        option = "DST"
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert f"{option} {output}: the folder {output.parent} {reason}" in " ".join(run.stderr.split())
