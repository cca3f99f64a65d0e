"""The files of a run folder, by hand: where runs go, the folder's name, each file's place, the lines
metrics.jsonl gets (and keeps on resume), summary.json, which folders a new run may take and the
message when it may not, what a new or resumed run clears, and which failed starts are removed."""

from __future__ import annotations

import fcntl
import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import tiny_gat_config

from gat_tui.events import CheckpointSaved, EpochSummary, RunFinished, StepMetrics
from gat_tui.runs.folder import (
    MetricsLog,
    RunFolder,
    RunFolderError,
    RunPaths,
    check_new_run_dir,
    default_runs_dir,
    new_run_dir,
    read_json_lines,
    remove_if_empty,
    truncate_metrics,
    write_summary,
)
from gat_tui.runs.identity import RunMarker, read_marker, write_marker
from gat_tui.runs.lock import RunLock, RunLocked, lock_holder

CONFIG = tiny_gat_config("tiny", epochs=2, panel_size=0, data={"train_size": 32, "val_size": 16, "test_size": 16})


def test_runs_go_to_the_environments_folder_else_the_users_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAT_TUI_RUNS_DIR", str(tmp_path / "mine"))
    assert default_runs_dir() == tmp_path / "mine"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GAT_TUI_RUNS_DIR", "~/runs")
    assert default_runs_dir() == tmp_path / "home" / "runs"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for unset in ("", None):
        if unset is None:
            monkeypatch.delenv("GAT_TUI_RUNS_DIR")
        else:
            monkeypatch.setenv("GAT_TUI_RUNS_DIR", unset)
        assert default_runs_dir() == tmp_path / "data" / "gat-tui" / "runs"


def test_a_new_run_folder_is_named_for_its_preset_and_second_with_a_suffix_for_a_second_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    formats: list[str] = []

    def fixed_time(form: str, *args: object) -> str:
        formats.append(form)
        return "20261207-101500"

    monkeypatch.setattr(time, "strftime", fixed_time)
    runs = tmp_path / "a" / "runs"  # made, parents included
    made = [new_run_dir(runs, "mnist-gat") for _ in range(3)]
    assert made == [runs / "mnist-gat-20261207-101500", runs / "mnist-gat-20261207-101500-2", runs / "mnist-gat-20261207-101500-3"]
    assert all(path.is_dir() for path in made) and formats == ["%Y%m%d-%H%M%S"] * 3


def test_each_file_has_its_place_in_the_run_folder(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    assert (paths.config, paths.metrics, paths.checkpoints, paths.last_checkpoint, paths.best_checkpoint) == (
        tmp_path / "config.toml",
        tmp_path / "metrics.jsonl",
        tmp_path / "checkpoints",
        tmp_path / "checkpoints" / "last.safetensors",
        tmp_path / "checkpoints" / "best.safetensors",
    )
    assert (paths.summary, paths.tensorboard, paths.evals, paths.panels, paths.lock) == (
        tmp_path / "summary.json",
        tmp_path / "tensorboard",
        tmp_path / "evals",
        tmp_path / "panels",
        tmp_path / ".lock",
    )


def step(step: int, epoch: int = 1, **figures: float | None) -> StepMetrics:
    values: dict[str, float | None] = {"loss_f": 0.5, "loss_g": None, "pert_l2": 1.5, "pert_linf": 0.25, **figures}
    return StepMetrics(epoch=epoch, step=step, time=2.0 * step, images_per_second=100.0, **values)  # type: ignore[arg-type]


def epoch_line(epoch: int, step: int, val_acc_adv: float | None = None) -> EpochSummary:
    return EpochSummary(
        epoch=epoch, step=step, time=10.0 * epoch, val_acc_clean=0.75, val_acc_adv=val_acc_adv, val_acc_fgm_l2=0.5,
        val_pert_l2=None, val_pert_linf=None, val_loss_g=None, is_best=True, epoch_seconds=10.0,
    )


def test_the_metrics_log_writes_one_line_per_step_and_epoch(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"event": "step", "step": 0}\n', encoding="utf-8")  # appended to, never replaced
    log = MetricsLog(path)
    log(step(3, loss_f=math.nan, train_acc_clean=0.5))
    log(CheckpointSaved("last.safetensors", 1, 3, "epoch"))  # not a metrics line
    log(epoch_line(1, 4))
    log(epoch_line(2, 8, val_acc_adv=math.inf))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4  # each flushed at once, before close
    log.close()
    assert [json.loads(line) for line in lines[1:]] == [
        # None figures left out, a non-finite one written as null
        {"event": "step", "epoch": 1, "step": 3, "time": 6.0, "loss_f": None, "pert_l2": 1.5, "pert_linf": 0.25,
         "images_per_second": 100.0, "train_acc_clean": 0.5},
        # val_acc_adv is kept as null: every epoch line carries it
        {"event": "epoch", "epoch": 1, "step": 4, "time": 10.0, "val_acc_clean": 0.75, "val_acc_adv": None,
         "val_acc_fgm_l2": 0.5, "is_best": True, "epoch_seconds": 10.0},
        {"event": "epoch", "epoch": 2, "step": 8, "time": 20.0, "val_acc_clean": 0.75, "val_acc_adv": None,
         "val_acc_fgm_l2": 0.5, "is_best": True, "epoch_seconds": 10.0},
    ]
    assert "NaN" not in path.read_text(encoding="utf-8") and "Infinity" not in path.read_text(encoding="utf-8")


def test_json_lines_are_read_back_skipping_a_line_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2\n[3]\n\n7\n', encoding="utf-8")
    assert read_json_lines(path) == [{"step": 1}, [3], 7]
    assert read_json_lines(tmp_path / "missing.jsonl") == []
    assert read_json_lines(tmp_path) == []  # a folder in its place
    path.write_bytes(b'{"step": 1}\n\xff\n')
    with pytest.raises(UnicodeDecodeError):
        read_json_lines(path)


def test_a_resume_keeps_the_metrics_up_to_its_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [
        {"event": "step", "epoch": 1, "step": 5},
        {"event": "epoch", "epoch": 1, "step": 10},
        {"event": "step", "epoch": 2, "step": 10},  # at the checkpoint's step: kept
        {"event": "step", "epoch": 2, "step": 11},  # after it: dropped
        {"event": "epoch", "epoch": 2, "step": 10},  # an epoch after the checkpoint's: dropped
        {"event": "note", "epoch": 9, "step": 99},  # not a step or an epoch line: kept
        {"event": "step", "epoch": 2, "step": "12"},  # not a line this log writes: dropped
        {"event": "epoch", "epoch": 2.0, "step": 10},  # nor this
        ["step", 3],
        {"event": "epoch"},  # no step or epoch: kept (counts as 0)
        {"event": "step", "epoch": "1", "step": 3},  # an early step, but its epoch is not this log's: dropped
        {"event": "step", "epoch": 1},  # a step line without a step: counts as 0, kept
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines) + '{"event": "step", "ep'  # a line cut short
    path.write_text(text, encoding="utf-8")
    truncate_metrics(path, step=10, epochs_done=1)
    assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == [lines[0], lines[1], lines[2], lines[5], lines[9], lines[11]]
    assert path.read_text(encoding="utf-8").endswith("}\n")
    truncate_metrics(tmp_path / "missing.jsonl", step=0, epochs_done=0)
    assert not (tmp_path / "missing.jsonl").exists()


def test_a_line_that_cannot_be_read_is_dropped_and_the_lines_after_it_kept(tmp_path: Path) -> None:
    # a run resumed after a crash before truncation existed, or a stray line: not the end of the log
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"event": "step", "epoch": 1, "step": 1}\n{"event": "st\n{"event": "step", "epoch": 1, "step": 2}\n', encoding="utf-8")
    truncate_metrics(path, step=2, epochs_done=1)
    assert path.read_text(encoding="utf-8") == '{"event": "step", "epoch": 1, "step": 1}\n{"event": "step", "epoch": 1, "step": 2}\n'


def test_a_damaged_byte_in_the_metrics_does_not_stop_a_resume(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"event": "step", "epoch": 1, "step": 1}\n{"event": "step", "note": "\xff", "epoch": 1, "step": 2}\n')
    truncate_metrics(path, step=1, epochs_done=0)
    assert path.read_text(encoding="utf-8") == '{"event": "step", "epoch": 1, "step": 1}\n'


def test_the_summary_holds_the_run_end_and_extra_figures_with_null_for_non_finite(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    finished = RunFinished("finished", 3, 30, 12.5, 2, 0.75, test_acc_clean=0.5, test_acc_adv=math.nan)
    write_summary(path, finished, {"test_pert_l2": math.inf, "seconds_per_epoch": 4.0})
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and text.startswith('{\n  "status": "finished",\n')
    assert json.loads(text) == {
        "status": "finished", "epochs_done": 3, "step": 30, "wall_seconds": 12.5, "best_epoch": 2, "best_value": 0.75,
        "test_acc_clean": 0.5, "test_acc_adv": None, "test_acc_fgm_l2": None, "message": "", "extra": {},
        "test_pert_l2": None, "seconds_per_epoch": 4.0,
    }


# -- which folders a new run may take ---------------------------------------------------------------


def test_a_missing_an_empty_or_a_lock_only_folder_takes_a_new_run(tmp_path: Path) -> None:
    check_new_run_dir(tmp_path / "missing")
    check_new_run_dir(tmp_path)
    (tmp_path / ".lock").write_text("")
    check_new_run_dir(tmp_path)
    # a marked run that died before its first checkpoint is started again
    write_marker(tmp_path, RunMarker("id", "t0"))
    (tmp_path / "metrics.jsonl").write_text("")
    check_new_run_dir(tmp_path)


def test_a_file_is_no_run_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    message = f"{tmp_path / 'file'}: is a file, not a folder; choose a folder for the run"
    with pytest.raises(RunFolderError) as error:
        check_new_run_dir(tmp_path / "file")
    assert str(error.value) == message
    with pytest.raises(RunFolderError) as error:
        RunFolder(tmp_path / "file", resuming=False).claim()
    assert str(error.value) == message


def test_a_folder_that_holds_a_run_with_a_checkpoint_is_refused_marked_or_not(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.safetensors").write_bytes(b"w")
    message = (
        f"{tmp_path} already holds a run (checkpoints/last.safetensors); continue it with `gat-tui resume {tmp_path}`, "
        "or choose another folder"
    )
    with pytest.raises(RunFolderError) as error:
        check_new_run_dir(tmp_path)
    assert str(error.value) == message
    write_marker(tmp_path, RunMarker("id", "t0"))
    with pytest.raises(RunFolderError) as error:
        check_new_run_dir(tmp_path)
    assert str(error.value) == message


def test_another_tools_folder_is_refused_naming_its_first_five_files(tmp_path: Path) -> None:
    for name in ("g", "f", "e", "d", "c", "b", ".lock"):
        (tmp_path / name).write_text("x")
    tail = (
        "and holds no run: it is not a gat-tui run folder (no gat-tui-run.json); "
        "nothing was written; choose an empty or new folder for the run"
    )
    with pytest.raises(RunFolderError) as error:
        check_new_run_dir(tmp_path)
    assert str(error.value) == f"{tmp_path}: is not empty (b, c, d, e, f, ...) {tail}"
    (tmp_path / "g").unlink()
    with pytest.raises(RunFolderError) as error:
        check_new_run_dir(tmp_path)
    assert str(error.value) == f"{tmp_path}: is not empty (b, c, d, e, f) {tail}"


# -- a training's hold on its folder ---------------------------------------------------------------


def test_a_refused_claim_leaves_the_folder_as_it_was_and_unlocked(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("theirs")
    claimer = RunFolder(taken, resuming=False)  # kept alive: collecting it would close its lock's handle
    with pytest.raises(RunFolderError):
        claimer.claim()
    assert sorted(path.name for path in taken.iterdir()) == [".lock", "notes.txt"]
    assert lock_holder(taken) is None


def test_a_folder_given_up_before_start_is_removed_if_the_run_made_it(tmp_path: Path) -> None:
    made = RunFolder(tmp_path / "made", resuming=False)
    made.claim()
    assert lock_holder(tmp_path / "made") is not None
    made.abandon()
    assert not (tmp_path / "made").exists()
    (tmp_path / "given").mkdir()
    given = RunFolder(tmp_path / "given", resuming=False)
    given.claim()
    given.abandon()
    assert (tmp_path / "given").is_dir() and list((tmp_path / "given").iterdir()) == []


def test_a_claimed_folder_refuses_a_second_writer_until_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gat_tui.runs.lock._ACQUIRE_PATIENCE_SECONDS", 0.05)
    first = RunFolder(tmp_path / "run", resuming=False)
    first.claim()
    with pytest.raises(RunLocked):
        RunFolder(tmp_path / "run", resuming=False).claim()
    first.start("seed = 1\n", 0, 0)
    first.close()
    first.close()  # a second close (a failed run's cleanup after the trainer's) does nothing
    assert lock_holder(tmp_path / "run") is None
    with RunLock(tmp_path / "run"):
        pass


def test_a_new_run_marks_its_folder_writes_its_config_and_clears_a_failed_attempt(tmp_path: Path) -> None:
    root = tmp_path / "run"
    paths = RunPaths(root)
    write_marker(root, RunMarker("old-attempt", "t0"))  # a run killed before its first checkpoint
    for stale in (paths.metrics, paths.summary, paths.best_checkpoint, paths.checkpoints / "epoch-001.safetensors",
                  paths.panels / "epoch_001.safetensors"):
        stale.parent.mkdir(parents=True, exist_ok=True)
        stale.write_bytes(b"stale")
    (paths.checkpoints / "other.safetensors").write_bytes(b"kept")
    run = RunFolder(root, resuming=False)
    run.claim()
    log = run.start("seed = 7\n", 0, 0)
    assert isinstance(log, MetricsLog) and log.path == paths.metrics
    marker = read_marker(root)
    assert marker is not None and marker.run_id != "old-attempt" and run.run_id == marker.run_id
    assert paths.config.read_text(encoding="utf-8") == "seed = 7\n"
    assert paths.metrics.read_bytes() == b""
    assert not paths.summary.exists() and not paths.best_checkpoint.exists()
    assert sorted(path.name for path in paths.checkpoints.iterdir()) == ["other.safetensors"]
    assert list(paths.panels.iterdir()) == []
    assert run.panel_store().run_dir == root
    # a killed attempt's event files go too, even with TensorBoard now off
    paths.tensorboard.mkdir()
    (paths.tensorboard / "events.out.tfevents.1.host").write_bytes(b"stale")
    (paths.tensorboard / "notes.txt").write_text("not an event file")
    assert run.start_tensorboard(replace(CONFIG, logging=replace(CONFIG.logging, tensorboard=False)), 0) is None
    assert [path.name for path in paths.tensorboard.iterdir()] == ["notes.txt"]
    run.close()


def test_a_resumed_run_keeps_its_id_and_its_files_up_to_the_checkpoint(tmp_path: Path) -> None:
    root = tmp_path / "run"
    paths = RunPaths(root)
    write_marker(root, RunMarker("the-run", "t0"))
    paths.metrics.write_text(
        '{"event": "epoch", "epoch": 1, "step": 4}\n{"event": "step", "epoch": 2, "step": 5}\n', encoding="utf-8"
    )
    paths.panels.mkdir()
    for epoch in (1, 2):
        (paths.panels / f"epoch_{epoch:03d}.safetensors").write_bytes(b"panel")
    paths.summary.write_text('{"status": "stopped"}', encoding="utf-8")
    run = RunFolder(root, resuming=True)
    run.claim()  # no checkpoint named: nothing to check
    run.start("seed = 7\n", step=4, epochs_done=1)
    run.close()
    assert run.run_id == "the-run" and read_marker(root) == RunMarker("the-run", "t0")
    assert paths.metrics.read_text(encoding="utf-8") == '{"event": "epoch", "epoch": 1, "step": 4}\n'
    assert sorted(path.name for path in paths.panels.iterdir()) == ["epoch_001.safetensors"]
    assert paths.summary.exists()  # the run's end rewrites it


def test_a_resumed_run_without_event_files_writes_its_history_at_its_own_wall_times(tmp_path: Path) -> None:
    from tensorboard_events import read_events

    root = tmp_path / "run"
    paths = RunPaths(root)
    write_marker(root, RunMarker("the-run", "t0"))
    paths.metrics.write_text('{"event": "step", "epoch": 1, "step": 2, "time": 1.5, "loss_f": 0.5}\n', encoding="utf-8")
    run = RunFolder(root, resuming=True)
    run.claim()
    run.start("seed = 7\n", step=2, epochs_done=0)
    os.utime(paths.metrics, (5000.0, 5000.0))  # the metrics file last changed at t = 5000, 1.5 s into the run
    log = run.start_tensorboard(CONFIG, 2)
    assert log is not None
    log.close()
    run.close()
    assert [event.wall_time for event in read_events(paths.tensorboard).Scalars("loss/classifier")] == [5000.0]


def test_a_run_resumed_in_a_folder_without_marker_gets_one_with_its_checkpoints_id(tmp_path: Path) -> None:
    root = tmp_path / "run"
    root.mkdir()
    run = RunFolder(root, resuming=True)
    run.claim()
    run.run_id = "from-the-checkpoint"  # what claim reads from the checkpoint it resumes
    run.start("seed = 7\n", 0, 0)
    run.close()
    marker = read_marker(root)
    assert marker is not None and marker.run_id == "from-the-checkpoint" == run.run_id


# -- removing a failed start's folder --------------------------------------------------------------


def test_only_an_empty_folder_or_one_with_an_unheld_empty_lock_is_removed(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert remove_if_empty(empty) and not empty.exists()
    lock_only = tmp_path / "lock-only"
    lock_only.mkdir()
    (lock_only / ".lock").write_text("")
    assert remove_if_empty(lock_only) and not lock_only.exists()
    assert not remove_if_empty(tmp_path / "missing")
    for name, content in (("recorded", '{"pid": 1}'), ("other", "")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / (".lock" if name == "recorded" else "notes.txt")).write_text(content)
        assert not remove_if_empty(folder) and folder.is_dir()
    lock_dir = tmp_path / "lock-dir"
    (lock_dir / ".lock").mkdir(parents=True)
    assert not remove_if_empty(lock_dir) and lock_dir.is_dir()


def test_a_folder_whose_empty_lock_is_held_is_not_removed(tmp_path: Path) -> None:
    held = tmp_path / "held"
    held.mkdir()
    handle = (held / ".lock").open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # a writer that has not recorded itself yet
        assert not remove_if_empty(held) and (held / ".lock").exists()
    finally:
        handle.close()

