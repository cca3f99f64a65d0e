"""What a run's TensorBoard files get from its records, by hand: which figures become which scalars,
the hyperparameters' keys, the perturbation image's grey levels, which folders `export
--tensorboard` finds and how it names them, the wall times it gives, the test figures of a finished
run, what each subscriber event becomes, and each refusal with the folder named."""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import tiny_gat_config
from tensorboard_events import read_events, scalars

from gat_tui.config import NormalizeConfig, config_to_toml
from gat_tui.events import CheckpointSaved, EpochSummary, LogMessage, PreviewPanel, RunFinished, StepMetrics
from gat_tui.runs import tensorboard
from gat_tui.runs.tensorboard import (
    ExportError,
    TensorBoardLog,
    _write_records,
    event_files,
    export_run,
    export_tensorboard,
    find_run_folders,
    hparams_of,
    scalars_of,
    visible_perturbation,
    walltime_base,
)

CONFIG = tiny_gat_config("tiny", epochs=1, panel_size=0, data={"train_size": 32, "val_size": 16, "test_size": 16})


def test_each_finite_figure_becomes_a_scalar_under_its_tag() -> None:
    record = {"event": "step", "step": 3, "loss_f": 2, "loss_g": None, "pert_l2": math.nan, "pert_linf": math.inf,
              "train_acc_clean": 0.5, "train_acc_adv": True, "val_acc_clean": "0.9", "epoch_seconds": 1.5}
    assert list(scalars_of(record)) == [("loss/classifier", 2.0), ("accuracy/train_clean", 0.5), ("speed/epoch_seconds", 1.5)]
    assert all(type(value) is float for _, value in scalars_of(record))
    assert list(scalars_of({"test_acc_clean": 0.75, "loss_f": 1.0}, tensorboard.TEST_TAGS)) == [("test/acc_clean", 0.75)]


def test_the_hyperparameters_are_the_config_as_dotted_keys_with_other_values_as_text() -> None:
    config = dataclasses.replace(CONFIG, data=dataclasses.replace(CONFIG.data, path="/data/images"))
    flat = hparams_of(config)
    assert (flat["name"], flat["method"], flat["seed"], flat["device"]) == ("tiny", "gat", CONFIG.seed, "cpu")
    assert (flat["train.epochs"], flat["gat.lr_g"], flat["data.path"], flat["data.image_size"]) == (1, 1e-3, "/data/images", 8)
    assert flat["logging.tensorboard"] is True
    assert flat["model.normalize"] == "None"  # not a TensorBoard value: its text
    assert not any(isinstance(value, (dict, list, tuple)) or value is None for value in flat.values())
    assert "train" not in flat and "gat" not in flat


def test_a_hyperparameter_that_is_a_list_is_given_as_its_text() -> None:
    normalize = NormalizeConfig(mean=(0.5, 0.25, 0.125), std=(0.2, 0.2, 0.2))
    flat = hparams_of(dataclasses.replace(CONFIG, model=dataclasses.replace(CONFIG.model, normalize=normalize)))
    assert (flat["model.normalize.mean"], flat["model.normalize.std"]) == ("(0.5, 0.25, 0.125)", "(0.2, 0.2, 0.2)")
    assert "model.normalize" not in flat


def test_a_perturbation_is_shown_around_mid_grey_scaled_by_its_largest_value() -> None:
    shown = visible_perturbation(np.array([-0.2, 0.1, 0.0, 0.2, -0.05], dtype=np.float32))
    np.testing.assert_allclose(shown, [0.0, 0.75, 0.5, 1.0, 0.375], rtol=1e-6)
    np.testing.assert_array_equal(visible_perturbation(np.zeros((2, 2), dtype=np.float32)), np.full((2, 2), 0.5))
    np.testing.assert_allclose(visible_perturbation(np.array([0.0, -0.4])), [0.5, 0.0])
    assert visible_perturbation(np.zeros((0, 3), dtype=np.float32)).shape == (0, 3)


def test_event_files_are_the_folders_tfevents_files_in_name_order(tmp_path: Path) -> None:
    assert event_files(tmp_path / "missing") == []
    for name in ("events.out.tfevents.2.h.0001", "events.out.tfevents.1.h.0000", "notes.txt", "x.events.out.tfevents.3"):
        (tmp_path / name).write_text("")
    assert event_files(tmp_path) == [tmp_path / "events.out.tfevents.1.h.0000", tmp_path / "events.out.tfevents.2.h.0001"]


def test_export_finds_a_run_a_folder_of_runs_and_a_sweeps_runs_by_label_and_seed(tmp_path: Path) -> None:
    def run(path: Path) -> Path:
        path.mkdir(parents=True)
        (path / "metrics.jsonl").write_text("")
        return path

    single = run(tmp_path / "single")
    assert find_run_folders(single) == [(single, Path("."))]
    runs = tmp_path / "runs-folder"
    b, a = run(runs / "b"), run(runs / "deep" / "a")
    assert find_run_folders(runs) == [(b, Path("b")), (a, Path("deep/a"))]
    sweep = tmp_path / "sweep"
    seed, tuning = run(sweep / "runs" / "gat" / "seed-0"), run(sweep / "tuning" / "gat")
    assert find_run_folders(sweep) == [(seed, Path("runs/gat/seed-0")), (tuning, Path("tuning/gat"))]  # no sweep.toml: paths kept
    (sweep / "sweep.toml").write_text("")
    assert find_run_folders(sweep) == [(seed, Path("gat/seed-0")), (tuning, Path("tuning/gat"))]
    assert find_run_folders(tmp_path / "plain" / "runs" / "x" / "nothing") == []


class Recorder:
    """Stands in for the EventWriter: what each call would write."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.failed = False
        self.error: BaseException | None = None

    def record(self, record: dict[str, Any], step: int, walltime: float | None = None) -> None:
        self.calls.append(("record", record.get("event"), step, walltime))

    def panel(self, panel: PreviewPanel, step: int) -> None:
        self.calls.append(("panel", panel.epoch, step))

    def flush(self) -> bool:
        self.calls.append(("flush",))
        return True

    def results(self, hparams: dict[str, Any], figures: dict[str, Any], step: int) -> None:
        self.calls.append(("results", hparams["name"], figures, step))

    def close(self) -> None:
        self.calls.append(("close",))


def test_metrics_lines_are_written_at_their_step_and_the_runs_start_plus_their_time() -> None:
    records = [
        {"event": "step", "step": 2, "time": 1.5},
        {"event": "epoch", "step": 4, "time": 3},
        {"event": "step", "step": 5, "time": math.nan},  # no time: written now
        {"event": "step", "step": 6},
        {"event": "note", "step": 7, "time": 1.0},  # not a metrics line
        {"event": "step", "step": "8", "time": 1.0},
        {"event": "step", "time": 1.0},
        ["step", 9],
    ]
    events = Recorder()
    assert _write_records(events, records, 1000.0) == 4  # type: ignore[arg-type]
    assert events.calls == [("record", "step", 2, 1001.5), ("record", "epoch", 4, 1003.0), ("record", "step", 5, None), ("record", "step", 6, None)]
    events = Recorder()
    assert _write_records(events, records[:2], None) == 2  # type: ignore[arg-type]
    assert [call[3] for call in events.calls] == [None, None]


def test_a_runs_start_is_its_metrics_files_last_change_less_its_last_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("")
    os.utime(metrics, (5000.0, 5000.0))
    records = [{"event": "step", "step": 1, "time": 30.0}, {"event": "epoch", "step": 2, "time": 120.0},
               {"event": "note", "step": 3, "time": 900.0}, {"event": "step", "step": 4, "time": math.inf}]
    assert walltime_base(metrics, records) == 4880.0
    assert walltime_base(metrics, []) == 5000.0
    monkeypatch.setattr(time, "time", lambda: 7000.0)
    assert walltime_base(tmp_path / "missing.jsonl", records) == 6880.0


def a_panel(epoch: int) -> PreviewPanel:
    images = np.zeros((1, 1, 2, 2), dtype=np.float32)
    return PreviewPanel(epoch, images, images, images, [0], [0], [0], ["a"])


def test_each_training_event_becomes_its_scalars_panel_flush_or_results(tmp_path: Path) -> None:
    log = TensorBoardLog(tmp_path, CONFIG)
    log.close()
    events = Recorder()
    log._events = events  # type: ignore[assignment]
    step = StepMetrics(1, 3, 1.0, 0.5, None, None, None, 10.0)
    epoch = EpochSummary(1, 4, 2.0, 0.5, None, 0.5, None, None, None, True, 2.0)
    log(a_panel(1))  # before any step: at step 0
    log(step)
    log(a_panel(7))  # an epoch without a summary: at the last step seen
    log(epoch)
    log(StepMetrics(2, 6, 3.0, 0.5, None, None, None, 10.0))
    log(a_panel(1))  # epoch 1's panel: at epoch 1's last step
    log(CheckpointSaved("last", 1, 6, "epoch"))
    log(LogMessage("info", "nothing to write"))
    log(RunFinished("stopped", 1, 6, 5.0, 1, 0.5))
    log(RunFinished("finished", 2, 8, 5.0, 1, 0.5, test_acc_clean=0.75, extra={"test_pert_l2": 0.25, "test_acc_clean": 0.0}))
    finished = {"test_pert_l2": 0.25, "test_acc_clean": 0.75, "status": "finished", "epochs_done": 2, "step": 8,
                "wall_seconds": 5.0, "best_epoch": 1, "best_value": 0.5, "test_acc_adv": None, "test_acc_fgm_l2": None,
                "message": "", "extra": {"test_pert_l2": 0.25, "test_acc_clean": 0.0}}
    assert events.calls == [
        ("panel", 1, 0), ("record", None, 3, None), ("panel", 7, 3), ("record", None, 4, None), ("record", None, 6, None),
        ("panel", 1, 4), ("flush",), ("flush",), ("results", "tiny", finished, 8), ("flush",),
    ]


def test_the_user_is_told_why_the_event_files_stopped(tmp_path: Path) -> None:
    log = TensorBoardLog(tmp_path, CONFIG)
    log.close()
    events = Recorder()
    log._events = events  # type: ignore[assignment]
    assert log.failure() is None
    events.failed = True
    tail = (
        "; training goes on, metrics.jsonl holds every figure, and `gat-tui export RUN_DIR --tensorboard OUT` rebuilds the files from it"
    )
    assert log.failure() == f"TensorBoard event files in {tmp_path} stopped{tail}"
    events.error = OSError(28, "No space left on device")
    assert log.failure() == f"TensorBoard event files in {tmp_path} stopped ([Errno 28] No space left on device){tail}"


def write_run(folder: Path, summary: dict[str, Any] | None, config: str | None = None) -> Path:
    folder.mkdir(parents=True)
    lines = [{"event": "step", "epoch": 1, "step": 2, "time": 1.0, "loss_f": 0.5},
             {"event": "epoch", "epoch": 1, "step": 4, "time": 2.0, "val_acc_clean": 0.625}]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    (folder / "config.toml").write_text(config_to_toml(CONFIG) if config is None else config, encoding="utf-8")
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return folder


def test_an_export_writes_the_scalars_and_a_finished_runs_test_figures(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", {"status": "finished", "step": 4, "test_acc_clean": 0.75, "extra": {"test_pert_l2": 1.25}})
    exported = export_run(run, tmp_path / "out")
    assert (exported.run_dir, exported.out_dir, exported.records, exported.with_results) == (run, tmp_path / "out", 2, True)
    assert scalars(tmp_path / "out") == {
        "loss/classifier": [(2, 0.5)], "accuracy/val_clean": [(4, 0.625)], "test/acc_clean": [(4, 0.75)], "test/pert_l2": [(4, 1.25)],
    }
    start = read_events(tmp_path / "out").Scalars("loss/classifier")[0].wall_time
    # the run's own times, not the export's: a relative tolerance on seconds since 1970 would allow half an hour
    assert start == pytest.approx((run / "metrics.jsonl").stat().st_mtime - 1.0, abs=1e-3)


def test_a_resumed_runs_history_keeps_its_own_wall_times(tmp_path: Path) -> None:
    log = TensorBoardLog(tmp_path / "tb", CONFIG)
    records = [{"event": "step", "epoch": 1, "step": 2, "time": 1.0, "loss_f": 0.5},
               {"event": "epoch", "epoch": 1, "step": 4, "time": 2.5, "val_acc_clean": 0.625}]
    assert log.write_history(records, walltime_base=1000.0) == 2
    log.close()
    events = read_events(tmp_path / "tb")
    assert [event.wall_time for event in events.Scalars("loss/classifier")] == [1001.0]
    assert [event.wall_time for event in events.Scalars("accuracy/val_clean")] == [1002.5]


@pytest.mark.parametrize(
    ("summary", "config"),
    [
        ({"status": "stopped", "step": 4, "test_acc_clean": 0.75}, None),
        ({"status": "finished", "step": "4", "test_acc_clean": 0.75}, None),
        (["finished"], None),
        ({"status": "finished", "step": 4, "test_acc_clean": 0.75}, "seed = ["),  # a config of another version
    ],
)
def test_an_export_of_a_run_without_a_usable_finished_summary_writes_the_scalars_only(
    tmp_path: Path, summary: Any, config: str | None
) -> None:
    run = write_run(tmp_path / "run", summary, config)
    exported = export_run(run, tmp_path / "out")
    assert (exported.records, exported.with_results) == (2, False)
    assert sorted(scalars(tmp_path / "out")) == ["accuracy/val_clean", "loss/classifier"]


def test_each_export_refusal_names_the_folder(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", None)
    with pytest.raises(ExportError) as error:
        export_tensorboard(tmp_path / "missing", tmp_path / "out")
    assert str(error.value) == f"{tmp_path / 'missing'}: no such folder; expected a run folder or a sweep folder"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError) as error:
        export_tensorboard(tmp_path / "empty", tmp_path / "out")
    assert str(error.value) == f"{tmp_path / 'empty'}: holds no run (no metrics.jsonl found in it or below it)"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError) as error:
        export_tensorboard(run, tmp_path / "file")
    assert str(error.value) == f"{tmp_path / 'file'}: is a file; expected a folder for the event files"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "events.out.tfevents.1.h").write_text("")
    message = f"{tmp_path / 'out'}: already holds TensorBoard event files; remove them or choose another --tensorboard folder"
    with pytest.raises(ExportError) as error:
        export_tensorboard(run, tmp_path / "out")
    assert str(error.value) == message
    with pytest.raises(ExportError) as error:
        export_run(run, tmp_path / "out")
    assert str(error.value) == message
    (run / "metrics.jsonl").write_bytes(b"\xff\n")
    with pytest.raises(ExportError) as error:
        export_run(run, tmp_path / "new")
    assert str(error.value).startswith(f"{run / 'metrics.jsonl'}: not UTF-8 text (")
    assert export_tensorboard(write_run(tmp_path / "other", None), tmp_path / "fresh")[0].out_dir == tmp_path / "fresh" / "."


def raw_events(folder: Path) -> list[Any]:
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader  # the events as written

    return [event for path in event_files(folder) for event in LegacyEventFileLoader(str(path)).Load()]


def test_a_resumed_writer_starts_with_the_purge_marker_at_its_step_then_the_scalars_asked(tmp_path: Path) -> None:
    writer = tensorboard.EventWriter(tmp_path, purge_step=11)
    assert writer.flush() is True  # the marker's two events reach the file
    writer.scalar("eval/fgm", 0.625, 3)
    writer.record({"loss_f": 1.5, "val_acc_clean": math.nan}, 12, walltime=1234.5)
    writer.close()
    writer.scalar("eval/fgm", 0.5, 4)  # after close: dropped
    writer.record({"loss_f": 9.0}, 13)
    assert writer.flush() is False and not writer.failed
    events = raw_events(tmp_path)
    assert [event.file_version for event in events[:2]] == ["brain.Event:2", "brain.Event:2"]  # the file's header, then the marker's
    assert (events[1].step, events[2].step, events[2].session_log.status) == (11, 11, events[2].session_log.START)
    shown = [(event.step, value.tag, value.simple_value, event.wall_time) for event in events[3:] for value in event.summary.value]
    assert shown[0][:3] == (3, "eval/fgm", 0.625)
    assert shown[1] == (12, "loss/classifier", 1.5, 1234.5)
    assert len(shown) == 2
    assert [path.name[-5:] for path in event_files(tmp_path)] == [".0000"]
    second = tensorboard.EventWriter(tmp_path)  # a second file beside the first, numbered after it
    second.close()
    assert [path.name[-5:] for path in event_files(tmp_path)] == [".0000", ".0001"]


def test_a_writer_whose_thread_has_ended_counts_as_failed_and_writes_no_more(tmp_path: Path) -> None:
    # the thread ends only through close() or an error it could not write past; ended any other way,
    # the run must hear that its event files stopped (failure()) instead of queueing into nothing
    writer = tensorboard.EventWriter(tmp_path)
    writer._queue.put(tensorboard._Stop())  # the thread ends without close()
    writer._thread.join(5)
    assert not writer._thread.is_alive()
    writer.scalar("eval/fgm", 0.5, 1)
    assert writer.failed and writer._unflushed == 0


def _hold_writes(writer: tensorboard.EventWriter) -> threading.Event:
    """A slow or hung disk: the writer thread holds each event until the returned gate is set."""
    gate = threading.Event()
    write = writer._file.write_event

    def held(event: Any) -> None:
        gate.wait(30)
        write(event)

    writer._file.write_event = held
    return gate


def test_a_flush_waits_for_the_writer_and_a_writer_still_behind_is_not_waited_for_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tensorboard, "FLUSH_WAIT_SECONDS", 0.2)
    writer = tensorboard.EventWriter(tmp_path)
    assert writer.flush() is True  # nothing added since the last flush: nothing to wait for
    gate = _hold_writes(writer)
    writer.scalar("x", 1.0, 1)
    assert writer.flush() is False  # the event is not in the file: said, after FLUSH_WAIT_SECONDS
    assert writer.flush() is False  # still behind that flush: not waited for again
    gate.set()
    assert writer._behind is not None and writer._behind.wait(5)  # the writer reaches the timed-out flush
    writer.scalar("x", 2.0, 2)
    assert writer.flush() is True  # caught up: a flush waits again, and both events are in the file
    assert scalars(tmp_path)["x"] == [(1, 1.0), (2, 2.0)]
    writer.close()


def test_a_flush_during_which_the_writer_fails_is_not_reported_as_done(tmp_path: Path) -> None:
    writer = tensorboard.EventWriter(tmp_path)

    def full_disk(event: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    writer._file.write_event = full_disk
    writer.scalar("x", 1.0, 1)
    assert writer.flush() is False
    assert writer.failed and isinstance(writer.error, OSError)
    writer.close()


def test_closing_a_writer_stuck_on_a_write_returns_and_leaves_the_thread_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tensorboard, "FLUSH_WAIT_SECONDS", 0.2)
    writer = tensorboard.EventWriter(tmp_path)
    gate = _hold_writes(writer)
    writer.scalar("x", 1.0, 1)
    closing = threading.Thread(target=writer.close, daemon=True)
    closing.start()
    closing.join(10)  # close gives up once nothing was written for FLUSH_WAIT_SECONDS
    returned = not closing.is_alive()
    # the thread left behind is named for its folder (as thread dumps show it) and does not keep the process alive
    left = [thread for thread in threading.enumerate() if thread.name == f"tensorboard writer {tmp_path}"]
    gate.set()  # let the writer thread end either way
    assert returned
    assert len(left) == 1 and left[0].daemon


def test_a_failure_when_the_file_is_closed_is_recorded(tmp_path: Path) -> None:
    writer = tensorboard.EventWriter(tmp_path)

    def full_disk() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    writer._file.close = full_disk
    writer.close()
    assert writer.failed and isinstance(writer.error, OSError) and writer.error.errno == errno.ENOSPC


def test_events_held_back_by_the_flush_schedule_reach_the_file_when_no_more_come(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the first event is flushed at once; the second waits for FLUSH_EVERY_SECONDS with nothing else queued
    monkeypatch.setattr(tensorboard, "FLUSH_EVERY_SECONDS", 0.05)
    writer = tensorboard.EventWriter(tmp_path)
    writer.scalar("x", 1.0, 1)
    writer.scalar("x", 2.0, 2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(scalars(tmp_path).get("x", [])) < 2:
        time.sleep(0.02)
    assert scalars(tmp_path)["x"] == [(1, 1.0), (2, 2.0)]  # without a flush asked for
    assert not writer.failed
    writer.close()
