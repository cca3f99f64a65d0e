"""TensorBoard event files: read back, they hold what metrics.jsonl holds, also after a resume and an export."""

from __future__ import annotations

import errno
import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tensorboard_events import assert_same, expected_scalars, read_events, scalars, tiny

from gat_tui.config import config_from_toml, config_to_toml
from gat_tui.events import EPOCH_FIGURES, STEP_FIGURES, CheckpointSaved, Event, LogMessage, StepMetrics
from gat_tui.runs import tensorboard
from gat_tui.runs.panels import saved_panels
from gat_tui.runs.tensorboard import (
    PREVIEW_TAGS,
    SCALAR_TAGS,
    TEST_TAGS,
    EventWriter,
    ExportError,
    event_files,
    export_tensorboard,
)
from gat_tui.training.control import TrainingControl
from gat_tui.training.request import TrainingRequest
from gat_tui.training.trainer import Trainer


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("tb") / "run"
    assert Trainer(TrainingRequest(tiny(), run_dir)).run().status == "finished"
    return run_dir


def test_every_figure_has_one_tag() -> None:
    assert set(STEP_FIGURES + EPOCH_FIGURES + ("images_per_second", "epoch_seconds")) == SCALAR_TAGS.keys()
    tags = [*SCALAR_TAGS.values(), *TEST_TAGS.values(), *PREVIEW_TAGS.values()]
    assert len(tags) == len(set(tags))


def test_a_run_writes_its_metrics_previews_and_hyperparameters(finished_run: Path) -> None:
    folder = finished_run / "tensorboard"
    actual = scalars(folder)
    expected = expected_scalars(finished_run)
    assert {"loss/classifier", "loss/generator", "accuracy/val_clean", "perturbation/val_l2", "speed/images_per_second"} <= expected.keys()
    assert_same(actual, expected)

    summary = json.loads((finished_run / "summary.json").read_text())
    for name, tag in TEST_TAGS.items():
        value = summary.get(name, summary.get("extra", {}).get(name))
        assert actual[tag] == [(summary["step"], pytest.approx(value, rel=1e-6))]

    accumulator = read_events(folder)
    epoch_steps = [step for step, _ in expected["accuracy/val_clean"]]
    for tag in PREVIEW_TAGS.values():
        images = accumulator.Images(tag)
        assert [image.step for image in images] == epoch_steps
        assert images[0].width > 0 and images[0].height > 0

    from tensorboard.plugins.hparams import plugin_data_pb2

    metadata = accumulator.SummaryMetadata("_hparams_/session_start_info")
    start = plugin_data_pb2.HParamsPluginData.FromString(metadata.plugin_data.content).session_start_info
    assert start.hparams["method"].string_value == "gat"
    assert start.hparams["gat.lr_g"].number_value == pytest.approx(1e-3)
    assert start.hparams["logging.tensorboard"].bool_value is True


def test_the_hyperparameters_session_starts_and_ends_at_the_runs_last_step(finished_run: Path) -> None:
    # without its end, TensorBoard's HParams table shows the run as unfinished
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    sessions = {}
    for path in event_files(finished_run / "tensorboard"):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag.startswith("_hparams_/"):
                    sessions[value.tag] = (event.step, plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content))
    last_step = json.loads((finished_run / "summary.json").read_text())["step"]
    assert sessions.keys() == {"_hparams_/session_start_info", "_hparams_/session_end_info"}
    assert [step for step, _ in sessions.values()] == [last_step, last_step]
    assert sessions["_hparams_/session_end_info"][1].session_end_info.status == api_pb2.STATUS_SUCCESS


def test_a_resumed_run_purges_what_came_after_its_checkpoint(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    stop = threading.Event()

    def stop_at_step_4(event: Event) -> None:
        if isinstance(event, StepMetrics) and event.step >= 4:
            stop.set()

    config = tiny()
    stopped = Trainer(TrainingRequest(config, run_dir), subscribers=[stop_at_step_4], control=TrainingControl(stop=stop)).run()
    assert stopped.status == "stopped" and stopped.step == 4
    # what a run killed after its checkpoint at step 4 went on to write, and resume must hide
    killed = EventWriter(run_dir / "tensorboard")
    for step in (5, 6, 8):  # from the step after the checkpoint on
        killed.record({"loss_f": 99.0, "val_acc_clean": 0.0}, step)
    killed.close()
    assert any(value == 99.0 for _, value in scalars(run_dir / "tensorboard")["loss/classifier"])

    finished = Trainer(TrainingRequest(config, run_dir, None, resume_from=run_dir / "checkpoints/last.safetensors")).run()
    assert finished.status == "finished"
    assert len(event_files(run_dir / "tensorboard")) == 3
    actual = scalars(run_dir / "tensorboard")
    assert_same(actual, expected_scalars(run_dir))
    for tag, values in actual.items():
        steps = [step for step, _ in values]
        assert steps == sorted(set(steps)), f"{tag}: {steps}"
    assert all(value != 99.0 for _, value in actual["loss/classifier"])


def test_a_new_runs_event_file_has_no_purge_marker(finished_run: Path) -> None:
    # a marker would tell TensorBoard to drop earlier files' steps from its step on: a new run has none to drop
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    (path,) = event_files(finished_run / "tensorboard")
    assert not any(event.HasField("session_log") for event in EventFileLoader(str(path)).Load())


def test_a_run_resumed_without_event_files_gets_its_history_first(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    stop = threading.Event()
    config = tiny(epochs=1)
    Trainer(TrainingRequest(config, run_dir), subscribers=[lambda e: stop.set() if isinstance(e, StepMetrics) else None], control=TrainingControl(stop=stop)).run()
    shutil.rmtree(run_dir / "tensorboard")  # as a run made before event files existed
    Trainer(TrainingRequest(config, run_dir, None, resume_from=run_dir / "checkpoints/last.safetensors")).run()
    assert_same(scalars(run_dir / "tensorboard"), expected_scalars(run_dir))


def test_tensorboard_can_be_switched_off(tmp_path: Path) -> None:
    config = config_from_toml(config_to_toml(tiny(epochs=1)), "test", ["logging.tensorboard=false"])
    assert config.logging.tensorboard is False
    assert Trainer(TrainingRequest(config, tmp_path / "run")).run().status == "finished"
    assert not (tmp_path / "run/tensorboard").exists()


def test_export_rebuilds_the_scalars_of_a_run_and_of_a_sweep(finished_run: Path, tmp_path: Path) -> None:
    exported = export_tensorboard(finished_run, tmp_path / "out")
    assert len(exported) == 1 and exported[0].with_results
    live, rebuilt = scalars(finished_run / "tensorboard"), scalars(tmp_path / "out")
    assert rebuilt.keys() == live.keys()
    for tag in live:
        assert rebuilt[tag] == live[tag], tag
    assert read_events(tmp_path / "out").SummaryMetadata("_hparams_/session_start_info").plugin_data.plugin_name == "hparams"

    sweep = tmp_path / "sweep"
    (sweep / "sweep.toml").parent.mkdir()
    (sweep / "sweep.toml").write_text("")
    for label, seed in (("gat", 0), ("gat", 1), ("baseline", 0)):
        shutil.copytree(finished_run, sweep / "runs" / label / f"seed-{seed}", ignore=shutil.ignore_patterns("tensorboard", "checkpoints"))
    exported = export_tensorboard(sweep, tmp_path / "sweep-out")
    assert sorted(str(run.out_dir.relative_to(tmp_path / "sweep-out")) for run in exported) == ["baseline/seed-0", "gat/seed-0", "gat/seed-1"]
    assert_same(scalars(tmp_path / "sweep-out/gat/seed-1"), expected_scalars(finished_run))

    with pytest.raises(ExportError, match="already holds TensorBoard event files"):
        export_tensorboard(sweep, tmp_path / "sweep-out")
    with pytest.raises(ExportError, match="holds no run"):
        export_tensorboard(tmp_path / "sweep-out", tmp_path / "elsewhere")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_writer_that_cannot_write_never_holds_training_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer_thread_writes(monkeypatch, full_disk)  # the file's header, written at opening, fits
    finished = Trainer(TrainingRequest(tiny(epochs=1), tmp_path / "run")).run()
    assert finished.status == "finished"  # the writer thread died at its first event; its queue never blocked a step
    assert expected_scalars(tmp_path / "run")["loss/classifier"]


def test_the_user_is_told_once_when_the_event_files_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer_thread_writes(monkeypatch, full_disk)
    events: list[Event] = []
    finished = Trainer(TrainingRequest(tiny(epochs=2), tmp_path / "run"), subscribers=[events.append]).run()
    assert finished.status == "finished"
    warnings = [event.text for event in events if isinstance(event, LogMessage) and "TensorBoard" in event.text]
    assert len(warnings) == 1  # at the first epoch's checkpoint, not again at the second
    assert str(tmp_path / "run" / "tensorboard") in warnings[0] and "No space left on device" in warnings[0]
    assert "gat-tui export" in warnings[0]
    assert [event.level for event in events if isinstance(event, LogMessage) and "TensorBoard" in event.text] == ["warning"]


def full_disk() -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def writer_thread_writes(monkeypatch: pytest.MonkeyPatch, before: Callable[[], object]) -> None:
    """Every event the writer thread writes first calls `before` (the file's header, written at opening, does not)."""
    from tensorboardX import event_file_writer

    original = event_file_writer.EventsWriter._write_serialized_event

    def write(self: object, data: bytes) -> None:
        if threading.current_thread() is not threading.main_thread():
            before()
        original(self, data)

    monkeypatch.setattr(event_file_writer.EventsWriter, "_write_serialized_event", write)


def within(seconds: float, call: Callable[[], Any]) -> tuple[bool, Any]:
    """(whether `call` returned within `seconds`, what it returned): a hang shows as a failure, not a stuck test."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), result[0] if result else None


def test_a_flush_returns_once_every_earlier_event_is_in_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tensorboard, "FLUSH_WAIT_SECONDS", 60.0, raising=False)  # a loaded machine is no reason to fail
    writer_thread_writes(monkeypatch, lambda: time.sleep(0.02))  # a disk slower than the training step
    writer = EventWriter(tmp_path)
    for step in range(1, 21):
        writer.record({"loss_f": float(step)}, step)
    flushed = writer.flush()
    try:
        # read before closing, as after a SIGKILL that follows the checkpoint
        assert scalars(tmp_path)["loss/classifier"] == [(step, float(step)) for step in range(1, 21)]
        assert flushed is True
    finally:
        writer.close()


def test_a_stuck_writer_neither_blocks_adds_nor_holds_a_flush_for_long(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tensorboard, "FLUSH_WAIT_SECONDS", 0.2, raising=False)
    unstuck = threading.Event()
    writer_thread_writes(monkeypatch, lambda: unstuck.wait(30))  # a disk that hangs
    writer = EventWriter(tmp_path)
    try:
        added, _ = within(10, lambda: [writer.record({"loss_f": float(step)}, step) for step in range(1, 51)])
        assert added, "adding events waited for the writer"
        flushed, result = within(10, writer.flush)
        assert flushed and result is False  # gave up after FLUSH_WAIT_SECONDS; the events stay queued
        assert not writer.failed
    finally:
        unstuck.set()
    monkeypatch.setattr(tensorboard, "FLUSH_WAIT_SECONDS", 60.0)
    writer.close()  # the writer moves again: closing waits for all it has queued
    assert scalars(tmp_path)["loss/classifier"] == [(step, float(step)) for step in range(1, 51)]


def test_at_each_epoch_checkpoint_the_files_hold_the_epoch_and_its_panel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a SIGKILL right after `last` leaves: the resume never writes those steps or that panel again."""
    monkeypatch.setattr(tensorboard, "FLUSH_WAIT_SECONDS", 60.0, raising=False)
    run_dir = tmp_path / "run"
    seen: dict[int, tuple[int, dict, dict, dict, list[int]]] = {}

    def at_epoch_checkpoint(event: Event) -> None:
        if isinstance(event, CheckpointSaved) and event.reason == "epoch":
            folder = run_dir / "tensorboard"
            accumulator = read_events(folder)
            shown = accumulator.Tags()["images"]
            images = {tag: [image.step for image in accumulator.Images(tag)] if tag in shown else [] for tag in PREVIEW_TAGS.values()}
            panels = [epoch for epoch, _ in saved_panels(run_dir)]
            seen[event.epoch] = (event.step, scalars(folder), expected_scalars(run_dir), images, panels)

    assert Trainer(TrainingRequest(tiny(), run_dir), subscribers=[at_epoch_checkpoint]).run().status == "finished"
    assert sorted(seen) == [1, 2]
    for epoch, (step, actual, expected, images, panels) in seen.items():
        assert_same(actual, expected)  # every figure up to the checkpoint's step
        epoch_steps = [epoch_step for epoch_step, _ in expected["accuracy/val_clean"]]
        assert epoch_steps[-1] == step
        for tag, steps in images.items():
            assert steps == epoch_steps, f"epoch {epoch}, {tag}: {steps}"
        assert panels == list(range(1, epoch + 1))
