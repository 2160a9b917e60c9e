"""File plumbing shared by every stage: JSON lines, hashing, atomic outputs and progress bars.

* :func:`read_jsonl` — the objects of a JSON-lines file with their line numbers; a bad line is an error naming the
  file and the line.

* :func:`load_yaml` — a YAML/JSON document whose syntax error names the file and line (no parser traceback).
* :func:`sha256_file` — the digest that manifests and resume journals record of an input.
* :func:`atomic_output` — write to a temporary file next to the target and rename it into place at the end, so a
  failure or a kill never leaves a torn or truncated output (and a previous good output survives a failed rerun).
  SIGTERM is turned into an exception meanwhile, so the temporary file is removed then too; after ``kill -9`` nothing
  can clean up, so temporaries are hidden (``.NAME.tmp-<pid>``, never matched by ``*.json``) and the next write of
  the same output removes those whose process is dead.
* :func:`die_with_parent` — a worker process that ends when its parent does (even a parent killed with ``-9``).
* :class:`ProgressBar` — one rich bar (on a terminal only): a label, a count, optional live fields, elapsed and
  remaining time.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Iterator, Optional


def read_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for every non-blank line of a JSON-lines file, streamed; a line that is not UTF-8
    or not a JSON object is an error naming it (a UTF-8 BOM opening a line is read past)."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8").removeprefix("\ufeff")
            except UnicodeDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid UTF-8 ({error.reason} at byte {error.start})") from None
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error})") from None
            if not isinstance(value, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object, not {type(value).__name__}")
            yield number, value


def read_json(path: str | os.PathLike) -> Any:
    """A whole JSON file (a dictionary, a reference): a syntax error or a bad byte names the file and the line."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not valid UTF-8 ({error.reason} at byte {error.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}: not valid JSON ({error.msg}, column {error.colno})") from None


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def refuse_input_as_output(output: str | os.PathLike | None, *inputs: str | os.PathLike | None) -> None:
    """An output that is one of the inputs would destroy it (``iepile clean x.json x.json`` used to empty x.json):
    refused with a clear error before any work. ``-`` and None (standard streams, no file) are never the same."""
    if output is None or str(output) == "-":
        return
    out = Path(output)
    for source in inputs:
        if source is None or str(source) == "-" or not Path(source).exists():
            continue
        same = out.resolve() == Path(source).resolve() or (out.exists() and os.path.samefile(out, source))
        if same:
            raise ValueError(f"{output}: this output is also the input {source}; writing it would destroy the "
                             "input. Choose another output path (nothing was changed)")


TEMPORARY_MARK = ".tmp-"


def temporary_name(path: str | os.PathLike) -> Path:
    """Where :func:`atomic_output` writes before the rename: a hidden file in the target's own directory (a rename
    across file systems would not be atomic), named after the writing process so a later run knows whether it is
    still being written."""
    path = Path(path)
    return path.with_name(f".{path.name}{TEMPORARY_MARK}{os.getpid()}")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of ``path`` left by processes that are gone (``kill -9``, a power cut); returns them.
    A live writer's temporary is left alone."""
    path = Path(path)
    prefix = f".{path.name}{TEMPORARY_MARK}"
    removed = []
    if not path.parent.is_dir():
        return removed
    for candidate in path.parent.iterdir():
        pid = candidate.name[len(prefix):]
        if not candidate.name.startswith(prefix) or not pid.isdigit() or process_alive(int(pid)):
            continue
        if candidate.is_dir() and not candidate.is_symlink():
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
        removed.append(candidate)
    return removed


class Terminated(SystemExit):
    """SIGTERM (or SIGHUP) received: raised in the main thread so that ``finally`` blocks and context managers run
    (a signal's default action would end the process on the spot, leaving temporaries behind)."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated(128 + signum)


@contextlib.contextmanager
def termination_as_exception() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise :class:`Terminated` (SIGINT already raises KeyboardInterrupt).
    Handlers someone else installed (a server's graceful shutdown) are kept; outside the main thread, nothing
    changes (Python only runs handlers there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) == signal.SIG_DFL:
            previous[signum] = signal.signal(signum, _raise_terminated)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on any exception (SIGTERM included) it is
    removed. Stale temporaries of ``path`` from dead processes are removed first."""
    remove_stale_temporaries(path)
    tmp = temporary_name(path)
    with termination_as_exception():
        try:
            yield tmp
            os.replace(tmp, path)
        except BaseException:
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """A whole text file at once: the old content stays until the new one is complete."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def check_writable(path: str | os.PathLike, option: str = "output") -> None:
    """Fail before the work (a model load, a long scoring) when an output cannot be written where asked."""
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise ValueError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{option} {path}: the folder {folder} is not writable")


FULL_DISK = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@contextlib.contextmanager
def naming_outputs(*outputs: str | os.PathLike | None) -> Iterator[None]:
    """Around the writing of ``outputs``: a write that fails for lack of space becomes an ``OSError`` whose message
    names them (one from ``write`` carries no file name, and several outputs may be open at once)."""
    try:
        yield
    except OSError as error:
        if error.errno not in FULL_DISK:
            raise
        names = " and ".join(str(output) for output in outputs if output)
        raise OSError(f"could not write {names}: {error.strerror} (nothing was replaced: a previous file is "
                      "unchanged)") from error


def die_with_parent(parent_pid: int) -> None:
    """Make the calling (worker) process end when ``parent_pid`` does. A worker blocked on its task queue never
    sees the parent die (it holds both ends of the queue's pipe), so after ``kill -9`` of the parent it would live
    on. Linux: the kernel sends SIGKILL (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread polls the parent."""
    try:
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        armed = False
    if os.getppid() != parent_pid:  # the parent died before the call
        os._exit(1)
    if not armed:
        def watch() -> None:
            while os.getppid() == parent_pid:
                threading.Event().wait(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def load_yaml(text: str, where: str) -> Any:
    """A YAML (or JSON) document, or a ValueError naming ``where`` and the line of a syntax error instead of a
    parser traceback (schema files, label maps, ``--config``)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{where}:{mark.line + 1}" if mark is not None else where
        problem = getattr(err, "problem", None) or str(err)
        context, started = getattr(err, "context", None), getattr(err, "context_mark", None)
        if context and started is not None:
            problem = f"{context} started on line {started.line + 1}: {problem}"
        raise ValueError(f"{where}: malformed YAML ({problem})") from None


class ProgressBar:
    """A rich progress bar on stderr, silent when disabled or when stderr is not a terminal.

    ``fields`` name live text columns (``{"rate": ""}`` shows ``rate`` as given to :meth:`update`); ``total`` None
    shows a spinner and a count instead of a bar."""

    def __init__(self, label: str, total: Optional[int] = None, *, unit: str = "", fields: Optional[dict] = None,
                 enabled: bool = True):
        self.label, self.total, self.unit = label, total, unit
        self.fields = dict(fields or {})
        self.enabled = enabled and sys.stderr.isatty()
        self.bar = None
        self.task_id = None

    def start(self, completed: int = 0) -> "ProgressBar":
        if not self.enabled:
            return self
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        columns = [SpinnerColumn() if self.total is None else TextColumn(f"[bold]{self.label}")]
        if self.total is None:
            columns.append(TextColumn(self.label))
        else:
            columns.append(BarColumn())
        columns.append(MofNCompleteColumn())
        if self.unit:
            columns.append(TextColumn(self.unit))
        columns += [TextColumn(f"{{task.fields[{name}]}}") for name in self.fields]
        columns.append(TimeElapsedColumn())
        if self.total is not None:
            columns.append(TimeRemainingColumn())
        self.bar = Progress(*columns, transient=True)
        self.bar.start()
        self.task_id = self.bar.add_task(self.label, total=self.total, completed=completed, **self.fields)
        return self

    def update(self, *, advance: int = 0, completed: Optional[int] = None, **fields) -> None:
        if self.bar is not None:
            self.bar.update(self.task_id, advance=advance, completed=completed, **fields)

    def print(self, message: str) -> None:
        """A line above the bar; nothing without a bar (what it says is in the run's logs as well)."""
        if self.bar is not None:
            self.bar.console.print(message)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def __enter__(self) -> "ProgressBar":
        return self.start()

    def __exit__(self, *exc) -> bool:
        self.stop()
        return False
