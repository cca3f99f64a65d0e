"""Every file gat-tui writes goes through here: to a temporary file beside it, then a rename.

A crash or a kill at any moment leaves the old file or the new one, never half of either. The
temporary file's name starts with a dot and ends in `.tmp`; ones left behind by a killed
writer are swept away by the next write to the same file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


def write_bytes_atomically(path: Path, data: bytes, durable: bool = True) -> None:
    """Write `data` to `path` atomically; `durable` also fsyncs the file and the rename (checkpoints)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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
