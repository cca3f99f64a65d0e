"""What `gat-tui runs`, the sweeps and resume read of a run folder's state, by hand: which figures
count as accuracies and norms, the status each combination of lock, summary and checkpoint gives,
who holds a folder's lock and the message a second writer gets."""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from gat_tui.runs import lock as lock_module
from gat_tui.runs.figures import accuracy_problem, is_accuracy, is_norm, is_number
from gat_tui.runs.lock import LockHolder, RunLock, RunLocked, is_locked, lock_holder
from gat_tui.runs.status import finished_summary, read_summary, run_status

# -- figures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "number", "accuracy", "norm"),
    [
        (0, True, True, True),
        (1, True, True, True),
        (0.0, True, True, True),
        (1.0, True, True, True),
        (0.5, True, True, True),
        (-0.001, True, False, False),
        (1.001, True, False, True),
        (7.5, True, False, True),
        (True, False, False, False),  # a bool is not a figure, though Python counts it an int
        (False, False, False, False),
        (math.nan, False, False, False),
        (math.inf, False, False, False),
        (-math.inf, False, False, False),
        ("0.5", False, False, False),
        (None, False, False, False),
    ],
)
def test_which_values_are_numbers_accuracies_and_norms(value: object, number: bool, accuracy: bool, norm: bool) -> None:
    assert (is_number(value), is_accuracy(value), is_norm(value)) == (number, accuracy, norm)


def test_the_warning_for_a_figure_that_is_not_an_accuracy_names_key_and_value() -> None:
    assert accuracy_problem("test_acc_clean", None) is None  # absent: nothing to warn about
    assert accuracy_problem("test_acc_clean", 0.0) is None
    assert accuracy_problem("test_acc_clean", 1.0) is None
    assert accuracy_problem("test_acc_clean", 7.5) == "test_acc_clean = 7.5 is not an accuracy (a fraction in [0, 1]); left out"
    assert accuracy_problem("val", "high") == "val = 'high' is not an accuracy (a fraction in [0, 1]); left out"
    assert accuracy_problem("val", math.nan) == "val = nan is not an accuracy (a fraction in [0, 1]); left out"


# -- status ----------------------------------------------------------------------------------------


def run_folder(tmp_path: Path, summary: object = None, *, raw: str | None = None, checkpoint: bool = False) -> Path:
    run = tmp_path / "run"
    run.mkdir(parents=True)
    if raw is not None:
        (run / "summary.json").write_text(raw, encoding="utf-8")
    elif summary is not None:
        (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    if checkpoint:
        (run / "checkpoints").mkdir()
        (run / "checkpoints" / "last.safetensors").write_bytes(b"weights")
    return run


@pytest.mark.parametrize("status", ["finished", "stopped", "failed"])
def test_a_summary_with_a_known_status_is_read_whole(tmp_path: Path, status: str) -> None:
    run = run_folder(tmp_path, {"status": status, "test_acc_clean": 0.75})
    assert read_summary(run) == {"status": status, "test_acc_clean": 0.75}
    # the summary outranks a checkpoint beside it
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.safetensors").write_bytes(b"weights")
    assert run_status(run) == status


@pytest.mark.parametrize(
    "raw",
    [
        '{"status": "running"}',  # not a status a summary may have
        '{"test_acc_clean": 0.75}',  # no status
        '["finished"]',  # not an object
        '{"status": "finished"',  # cut short
        "",
    ],
)
def test_a_summary_that_is_not_one_counts_as_none(tmp_path: Path, raw: str) -> None:
    with_checkpoint = run_folder(tmp_path, raw=raw, checkpoint=True)
    assert read_summary(with_checkpoint) is None
    assert run_status(with_checkpoint) == "stopped"  # killed after a checkpoint: resumable
    assert finished_summary(with_checkpoint) is None


def test_a_summary_that_is_not_utf8_counts_as_none(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_bytes(b'{"status": "finished", "name": "\xff"}')
    assert read_summary(run) is None and run_status(run) == "new"


def test_a_folder_without_summary_is_stopped_with_a_checkpoint_else_new(tmp_path: Path) -> None:
    assert run_status(run_folder(tmp_path / "a", checkpoint=True)) == "stopped"
    assert run_status(run_folder(tmp_path / "b")) == "new"
    # a best checkpoint alone is not the one resume takes
    only_best = run_folder(tmp_path / "c")
    (only_best / "checkpoints").mkdir()
    (only_best / "checkpoints" / "best.safetensors").write_bytes(b"weights")
    assert run_status(only_best) == "new"


def test_a_held_lock_makes_any_folder_running_and_hides_its_finished_summary(tmp_path: Path) -> None:
    run = run_folder(tmp_path, {"status": "finished", "test_acc_clean": 0.5})
    assert finished_summary(run) == {"status": "finished", "test_acc_clean": 0.5}
    with RunLock(run):
        assert run_status(run) == "running"
        assert finished_summary(run) is None  # an extension trains it again: its old figures are not the run's
        assert read_summary(run) == {"status": "finished", "test_acc_clean": 0.5}
    assert run_status(run) == "finished"
    assert run_status(run_folder(tmp_path / "stopped", {"status": "stopped"})) == "stopped"
    assert finished_summary(tmp_path / "stopped" / "run") is None


# -- the lock's holder -----------------------------------------------------------------------------


def test_a_holder_describes_itself_as_a_second_writer_reads_it() -> None:
    here = socket.gethostname()
    assert LockHolder(here, os.getpid(), "2026-12-07 10:00:00").describe() == "this process, since 2026-12-07 10:00:00"
    other_pid = os.getpid() + 1
    assert LockHolder(here, other_pid, "2026-12-07 10:00:00").describe() == f"process {other_pid}, since 2026-12-07 10:00:00"
    assert LockHolder(here, other_pid, "").describe() == f"process {other_pid}"
    # another host's process of our pid is not this process
    elsewhere = "not-" + here
    assert LockHolder(elsewhere, os.getpid(), "t0").describe() == f"process {os.getpid()} on host {elsewhere}, since t0"
    assert LockHolder(elsewhere, 7, "").describe() == f"process 7 on host {elsewhere}"


def hold_lock(run: Path, content: str) -> object:
    """The folder's lock held through a handle of our own, its file holding `content`."""
    run.mkdir(parents=True, exist_ok=True)
    handle = (run / ".lock").open("a+", encoding="utf-8")
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    handle.seek(0)
    handle.truncate()
    handle.write(content)
    handle.flush()
    return handle


def test_a_held_lock_names_its_holder_and_a_damaged_record_gives_an_unknown_one(tmp_path: Path) -> None:
    cases = {
        '{"host": "h1", "pid": 42, "started": "t0"}': LockHolder("h1", 42, "t0"),
        '{"host": "h1", "pid": "42"}': LockHolder("h1", 42, ""),  # no start time
        '{"host": "h1"}': LockHolder("?", 0, ""),  # no pid
        '{"host": "h1", "pid": "forty"}': LockHolder("?", 0, ""),
        '{"host": "h1", "pid": null}': LockHolder("?", 0, ""),
        "not json": LockHolder("?", 0, ""),
        "": LockHolder("?", 0, ""),
    }
    for number, (content, holder) in enumerate(cases.items()):
        run = tmp_path / f"run{number}"
        handle = hold_lock(run, content)
        try:
            assert lock_holder(run) == holder, content
            assert is_locked(run)
        finally:
            handle.close()  # type: ignore[attr-defined]
        assert lock_holder(run) is None and not is_locked(run)


def test_no_lock_file_or_a_folder_in_its_place_is_no_holder(tmp_path: Path) -> None:
    assert lock_holder(tmp_path / "missing") is None
    (tmp_path / "run" / ".lock").mkdir(parents=True)
    assert lock_holder(tmp_path / "run") is None


def test_probing_the_lock_leaves_it_free_for_a_writer(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text("")
    assert lock_holder(run) is None
    with RunLock(run):  # acquires at once: the probe's shared lock is gone
        assert lock_holder(run) is not None


# -- the writer's lock -----------------------------------------------------------------------------


def test_a_writer_records_who_it_is_while_it_holds_the_lock_and_nothing_after(tmp_path: Path) -> None:
    run = tmp_path / "new" / "run"  # made, parents included
    with RunLock(run) as held:
        assert held.path == run / ".lock"
        record = json.loads((run / ".lock").read_text(encoding="utf-8"))
        assert (record["host"], record["pid"]) == (socket.gethostname(), os.getpid())
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", record["started"])
        assert lock_holder(run) == LockHolder(socket.gethostname(), os.getpid(), record["started"])
    assert (run / ".lock").read_text(encoding="utf-8") == ""
    assert lock_holder(run) is None


def test_a_second_writer_is_refused_with_who_holds_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock_module, "_ACQUIRE_PATIENCE_SECONDS", 0.2)
    run = tmp_path / "run"
    first = RunLock(run)
    first.acquire()
    started = json.loads((run / ".lock").read_text(encoding="utf-8"))["started"]
    begun = time.monotonic()
    with pytest.raises(RunLocked) as refused:
        RunLock(run).acquire()
    assert time.monotonic() - begun >= 0.2  # it waited its patience before giving up
    assert str(refused.value) == (
        f"{run}: this run folder is being trained by this process, since {started}; one writer at a time: "
        "stop that training first, or choose another folder"
    )
    # the refused writer neither took the lock nor erased the holder's record
    assert lock_holder(run) == LockHolder(socket.gethostname(), os.getpid(), started)
    first.release()
    first.release()  # a second release does nothing
    assert lock_holder(run) is None


def test_a_writer_refused_by_an_unrecorded_holder_says_only_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock_module, "_ACQUIRE_PATIENCE_SECONDS", 0.05)
    run = tmp_path / "run"
    handle = hold_lock(run, "")
    try:
        with pytest.raises(RunLocked) as refused:
            RunLock(run).acquire()
    finally:
        handle.close()  # type: ignore[attr-defined]
    assert str(refused.value) == (
        f"{run}: this run folder is being trained; one writer at a time: stop that training first, or choose another folder"
    )


def test_a_writer_waits_for_a_lock_released_within_its_patience(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = RunLock(run)
    first.acquire()
    releaser = threading.Timer(0.2, first.release)
    releaser.start()
    try:
        with RunLock(run):  # a reader's probe or a closing writer: waited for, not refused
            assert lock_holder(run) is not None
    finally:
        releaser.join()


def test_the_lock_is_released_when_the_training_fails(tmp_path: Path) -> None:
    run = tmp_path / "run"
    held = RunLock(run)  # kept alive: its handle would otherwise be closed (and unlocked) by the garbage collector
    with pytest.raises(ZeroDivisionError), held:
        assert is_locked(run)
        _ = 1 / 0
    assert not is_locked(run)
    assert held.path.read_text(encoding="utf-8") == ""
    RunLock(run).release()  # never acquired: nothing to release
