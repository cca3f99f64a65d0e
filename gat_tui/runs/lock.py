"""One writer per run folder: an exclusive `flock` on `RUN/.lock` for the whole life of a training.

The operating system releases the lock when the process ends however it ends (kill -9
included), so a dead writer never leaves a stale lock behind. The lock file also records who
holds it (host, process id, start time) for the message a second writer gets. Locks on one
open file are separate from locks on another even within one process, so a dashboard window
that trains a run also sees that run as locked when it looks from its runs screen.

`flock` is POSIX; where `fcntl` is missing (Windows) runs are not locked.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"
# a reader probing the lock holds it for microseconds; a writer retries for this long
_ACQUIRE_PATIENCE_SECONDS = 1.0


class RunLocked(RuntimeError):
    """Another writer holds the run folder; the message names the folder and, where known, who."""


@dataclass(frozen=True)
class LockHolder:
    host: str
    pid: int
    started: str

    def describe(self) -> str:
        here = self.host == socket.gethostname()
        who = f"process {self.pid}" + ("" if here else f" on host {self.host}")
        if here and self.pid == os.getpid():
            who = "this process"
        return f"{who}, since {self.started}" if self.started else who


def _read_holder(path: Path) -> LockHolder | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return LockHolder(str(record["host"]), int(record["pid"]), str(record.get("started", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def lock_holder(run_dir: Path) -> LockHolder | None:
    """Who trains `run_dir` now, or None when no writer holds its lock."""
    path = run_dir / LOCK_NAME
    if fcntl is None or not path.is_file():
        return None
    try:
        handle = path.open("rb")
    except OSError:
        return None
    with handle:
        try:
            # a shared lock is refused while a writer holds the exclusive one
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(path) or LockHolder("?", 0, "")
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None


def is_locked(run_dir: Path) -> bool:
    return lock_holder(run_dir) is not None


class RunLock:
    """`with RunLock(run_dir):` holds the folder's exclusive lock, or raises RunLocked at once."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / LOCK_NAME
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        if fcntl is None:  # pragma: no cover - Windows
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        deadline = time.monotonic() + _ACQUIRE_PATIENCE_SECONDS
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    handle.close()
                    holder = _read_holder(self.path)
                    by = f" by {holder.describe()}" if holder else ""
                    raise RunLocked(
                        f"{self.run_dir}: this run folder is being trained{by}; one writer at a time: "
                        "stop that training first, or choose another folder"
                    ) from None
                time.sleep(0.05)
        # who holds it, for the message a second writer gets; written only while holding the lock
        handle.seek(0)
        handle.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        handle.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": started}))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        try:
            handle.seek(0)
            handle.truncate()  # no holder recorded once released
        except OSError:
            pass
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()
