"""Every file gat-tui writes goes through here: to a temporary file beside it, then a rename.

A crash or a kill at any moment leaves the old file or the new one, never half of either. The
temporary file's name starts with a dot and ends in `.tmp`; ones left behind by a killed
writer are swept away by the next write to the same file. The file ends with the mode an
ordinary `open()` would give it: that of the file it replaces, or 0666 less the process's umask
for a new one (`mkstemp` alone makes every file 0600, unreadable to a teammate or a group job).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path


def write_bytes_atomically(path: Path, data: bytes, durable: bool = True) -> None:
    """Write `data` to `path` atomically; `durable` also fsyncs the file and the rename (checkpoints)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(descriptor, _mode_for(path))
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        if error.filename is None and error.errno is not None:  # a failed write() names no file: name ours
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if durable:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # makes the rename itself durable
        finally:
            os.close(directory)


def write_text_atomically(path: Path, text: str, durable: bool = False) -> None:
    """Write UTF-8 `text` to `path` atomically (summaries, reports, evaluation JSON, metrics rewrites)."""
    write_bytes_atomically(path, text.encode("utf-8"), durable)


def _mode_for(path: Path) -> int:
    """The permission bits `open(path, "w")` would leave: the existing file's, else 0666 less the umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)  # elsewhere: set and restore it (a moment in which another thread's new file could differ)
    os.umask(umask)
    return umask


def _remove_stale_temporaries(path: Path) -> None:
    # only this file's own temporaries: `.<name>.<random>.tmp`; a live writer of the same file
    # would be a second writer, which the run-folder lock already refuses
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def describe_os_error(error: OSError, doing: str) -> str:
    """One line for a user: what failed, on which file, and why (a full disk said plainly)."""
    where = f" {error.filename}" if error.filename else ""
    reason = "the disk is full" if error.errno == errno.ENOSPC else (error.strerror or str(error))
    return f"{doing}{where}: {reason}"
