"""gat_tui.atomic: the old file or the new one, never half of either, and no temporary left behind."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import gat_tui.atomic as atomic
from gat_tui.atomic import write_bytes_atomically, write_text_atomically


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp"))

class FailingHandle:
    """The temporary file's handle, with its writes replaced by `write(handle, data)`."""

    def __init__(self, handle: Any, write: Callable[[Any, bytes], int]) -> None:
        self.handle, self._write = handle, write

    def __enter__(self) -> FailingHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()

    def write(self, data: bytes) -> int:
        return self._write(self.handle, data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)


def break_writes(monkeypatch: pytest.MonkeyPatch, write: Callable[[Any, bytes], int]) -> None:
    """Every file `gat_tui.atomic` opens writes through `write`."""
    real_fdopen = os.fdopen
    monkeypatch.setattr(atomic.os, "fdopen", lambda *args, **kwargs: FailingHandle(real_fdopen(*args, **kwargs), write))



def test_the_final_file_appears_only_by_a_rename_of_a_complete_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"old")
    renames: list[tuple[str, str, bytes, bytes]] = []
    real_replace = os.replace

    def watched_replace(source: Any, destination: Any) -> None:
        # at the moment of the rename the temporary is complete and the destination still old
        renames.append((str(source), str(destination), Path(source).read_bytes(), Path(destination).read_bytes()))
        real_replace(source, destination)

    monkeypatch.setattr(atomic.os, "replace", watched_replace)
    write_bytes_atomically(path, b"new content")
    assert len(renames) == 1
    source, destination, temporary_data, destination_data = renames[0]
    assert Path(destination) == path
    assert Path(source).parent == tmp_path
    assert Path(source).name.startswith(".model.safetensors.") and source.endswith(".tmp")
    assert temporary_data == b"new content" and destination_data == b"old"
    assert path.read_bytes() == b"new content"
    assert leftovers(tmp_path) == []


def test_a_failed_rename_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "summary.json"
    path.write_bytes(b"old")

    def broken_replace(source: Any, destination: Any) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk gone"):
        write_bytes_atomically(path, b"new")
    assert path.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_a_write_that_fails_midway_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.safetensors"
    path.write_bytes(b"old checkpoint")
    def half_then_fail(handle: Any, data: bytes) -> int:  # a full disk, or a kill, midway
        handle.write(data[: len(data) // 2])
        handle.flush()
        raise OSError("no space left on device")

    break_writes(monkeypatch, half_then_fail)
    with pytest.raises(OSError, match="no space"):
        write_bytes_atomically(path, b"0123456789" * 10)
    assert path.read_bytes() == b"old checkpoint"
    assert leftovers(tmp_path) == []


def test_an_interrupt_midway_also_removes_the_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "metrics.jsonl"

    def interrupted(source: Any, destination: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomically(path, "line\n")
    assert not path.exists()
    assert leftovers(tmp_path) == []


def test_stale_temporaries_of_the_same_file_are_swept_and_no_others(tmp_path: Path) -> None:
    path = tmp_path / "best.safetensors"
    (tmp_path / ".best.safetensors.abc123.tmp").write_bytes(b"left by a killed writer")
    (tmp_path / ".last.safetensors.abc123.tmp").write_bytes(b"another file's")
    (tmp_path / "best.safetensors.tmp").write_bytes(b"not ours: no leading dot")
    write_bytes_atomically(path, b"data")
    assert path.read_bytes() == b"data"
    assert leftovers(tmp_path) == [".last.safetensors.abc123.tmp", "best.safetensors.tmp"]


def test_parents_are_created_and_text_is_utf8(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "report.md"
    write_text_atomically(path, "ε = 0.5 — Δ")
    assert path.read_bytes() == "ε = 0.5 — Δ".encode()
    write_text_atomically(path, "second")
    assert path.read_text() == "second"


@pytest.mark.parametrize(
    ("write", "expected_fsyncs"),
    [
        (lambda path: write_bytes_atomically(path, b"x"), 2),  # durable by default: the file and the folder
        (lambda path: write_bytes_atomically(path, b"x", durable=False), 0),
        (lambda path: write_text_atomically(path, "x"), 0),  # text is not durable by default
        (lambda path: write_text_atomically(path, "x", durable=True), 2),
    ],
)
def test_durable_writes_fsync_the_file_and_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write: Any, expected_fsyncs: int) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(descriptor: int) -> None:
        synced.append(descriptor)
        real_fsync(descriptor)

    monkeypatch.setattr(atomic.os, "fsync", counting_fsync)
    write(tmp_path / "file")
    assert len(synced) == expected_fsyncs
    assert (tmp_path / "file").read_bytes() == b"x"


def test_describe_os_error_names_the_file_and_says_a_full_disk_plainly() -> None:
    import errno

    full = OSError(errno.ENOSPC, "No space left on device", "/runs/a/best.safetensors")
    assert atomic.describe_os_error(full, "cannot write") == "cannot write /runs/a/best.safetensors: the disk is full"
    denied = OSError(errno.EACCES, "Permission denied", "/runs/a")
    assert atomic.describe_os_error(denied, "cannot create the run folder") == "cannot create the run folder /runs/a: Permission denied"
    # no file and no strerror: the error's own text, and no stray space before the colon
    assert atomic.describe_os_error(OSError("bare"), "cannot read") == "cannot read: bare"


def test_a_failed_write_names_the_file_it_was_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # write() fails naming no file (a full disk): the error gets the destination's name, its errno kept
    import errno

    path = tmp_path / "best.safetensors"
    def full_disk(handle: Any, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    break_writes(monkeypatch, full_disk)
    with pytest.raises(OSError) as raised:
        write_bytes_atomically(path, b"data")
    assert (raised.value.errno, raised.value.strerror, raised.value.filename) == (errno.ENOSPC, "No space left on device", str(path))
    assert isinstance(raised.value.__cause__, OSError) and leftovers(tmp_path) == []


def test_an_error_naming_its_file_is_raised_as_it_is_even_if_the_temporary_is_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the rename fails after a second writer swept our temporary: its own error is the one raised
    import errno

    path = tmp_path / "best.safetensors"

    def swept_then_failed(source: Any, destination: Any) -> None:
        Path(source).unlink()
        raise OSError(errno.EXDEV, "Invalid cross-device link", str(source))

    monkeypatch.setattr(atomic.os, "replace", swept_then_failed)
    with pytest.raises(OSError) as raised:
        write_bytes_atomically(path, b"data")
    assert raised.value.errno == errno.EXDEV and Path(raised.value.filename).name.startswith(".best.safetensors.")
    assert not path.exists() and leftovers(tmp_path) == []


def test_an_interrupt_after_the_temporary_is_gone_is_still_the_interrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def swept_then_interrupted(source: Any, destination: Any) -> None:
        Path(source).unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", swept_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_bytes_atomically(tmp_path / "metrics.jsonl", b"line\n")
    assert leftovers(tmp_path) == []


def test_a_stale_temporary_swept_meanwhile_by_another_writer_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "best.safetensors"
    (tmp_path / ".best.safetensors.abc123.tmp").write_bytes(b"left by a killed writer")
    real_glob = Path.glob

    def found_then_swept(self: Path, pattern: str) -> Any:
        found = list(real_glob(self, pattern))
        for stale in found:
            stale.unlink()  # another writer's sweep gets there first
        return iter(found)

    monkeypatch.setattr(Path, "glob", found_then_swept)
    write_bytes_atomically(path, b"data")
    assert path.read_bytes() == b"data" and leftovers(tmp_path) == []


def test_a_replaced_file_keeps_its_mode_as_with_open(tmp_path: Path) -> None:
    import stat

    path = tmp_path / "summary.json"
    path.write_text("{}")
    path.chmod(0o640)
    write_text_atomically(path, '{"a": 1}')
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_text() == '{"a": 1}'


def test_the_umask_is_read_without_being_changed() -> None:
    previous = os.umask(0o027)
    try:
        assert atomic.current_umask() == 0o027
        assert os.umask(0o027) == 0o027  # still the same after reading it
    finally:
        os.umask(previous)
