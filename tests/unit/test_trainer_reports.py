"""What the trainer reports, figure by figure, without training: a step line's speed and time, the
summary a run ends with, the warnings on resume, the clock while paused.

A Trainer is built on a folder and its helpers are called with hand-set progress, a fixed clock and
hand-made step sums, so each figure below is computed by hand.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

import gat_tui.training.trainer as trainer_module
from gat_tui.config import DataConfig, EvalConfig, RunConfig, TrainConfig
from gat_tui.events import Event, LogMessage, RunFinished, StepMetrics
from gat_tui.training import checkpointing
from gat_tui.training.checkpointing import TrainingDiverged
from gat_tui.training.request import TrainingRequest
from gat_tui.training.step_metrics import StepAccumulator
from gat_tui.training.trainer import Trainer, _data_changed_note, _finished_before
from gat_tui.training.validation import PgdBudget


class _Clock:
    """`time.perf_counter` at a value the test sets."""

    def __init__(self, now: float) -> None:
        self.now = now

    def perf_counter(self) -> float:
        return self.now


def _config(method: str = "baseline", **train: Any) -> RunConfig:
    return RunConfig(
        name="tiny-name", method=method, device="cpu",
        data=DataConfig(dataset="synthetic", image_size=8, num_classes=3, train_size=96, val_size=32, test_size=32),
        train=TrainConfig(epochs=2, log_every=4, **train),
        eval=EvalConfig(fgm_l2_eps=0.3, panel_size=0),
    )


def _trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: RunConfig | None = None) -> tuple[Trainer, list[Event], _Clock]:
    clock = _Clock(1000.0)
    monkeypatch.setattr(trainer_module, "time", clock)
    events: list[Event] = []
    trainer = Trainer(TrainingRequest(config or _config(), tmp_path / "run"), subscribers=[events.append])
    return trainer, events, clock


def _sums(**values: float) -> dict[str, torch.Tensor]:
    return {name: torch.tensor(value) for name, value in values.items()}


def test_a_step_report_gives_the_speed_of_the_steps_timed_here_the_run_time_and_the_mean_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer, events, clock = _trainer(tmp_path, monkeypatch)
    trainer.progress.epoch, trainer.progress.step, trainer.progress.elapsed = 2, 12, 100.0
    trainer._started = 990.0  # 10 s of this session, 100 s of earlier ones
    clock.now = 1000.12345

    trainer._report(StepAccumulator(), 16, interval_started=999.0)
    assert events == []  # no step since the last report: no line

    # 5 steps since the last report, 2 of them carried over a resume (not timed in this process):
    # 3 steps x 16 images in the 0.5 s since the interval started
    accumulator = StepAccumulator(_sums(loss_f=5.0, pert_l2=2.5), steps=5, carried=2)
    trainer._report(accumulator, 16, interval_started=1000.12345 - 0.5)
    (line,) = events
    assert isinstance(line, StepMetrics)
    assert (line.epoch, line.step, line.time) == (2, 12, 110.123)  # 100 + 10.12345, to the millisecond
    assert line.images_per_second == pytest.approx(96.0)
    assert (line.loss_f, line.pert_l2, line.loss_g, line.train_acc_clean) == (1.0, 0.5, None, None)

    # a single step is a line too
    trainer._report(StepAccumulator(_sums(loss_f=0.25), steps=1), 8, interval_started=1000.12345 - 2.0)
    assert isinstance(events[-1], StepMetrics) and events[-1].loss_f == 0.25 and events[-1].images_per_second == pytest.approx(4.0)


def test_a_figure_that_is_not_finite_ends_the_run_naming_it_its_value_epoch_and_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer, events, _ = _trainer(tmp_path, monkeypatch)
    trainer.progress.epoch, trainer.progress.step = 3, 40
    accumulator = StepAccumulator(_sums(loss_f=2.0, loss_g=float("inf")), steps=2)
    with pytest.raises(TrainingDiverged) as caught:
        trainer._report(accumulator, 16, interval_started=999.0)
    assert str(caught.value) == "loss_g became inf by epoch 3, step 40"
    assert events == []


def test_the_clock_stands_still_while_paused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer, _, clock = _trainer(tmp_path, monkeypatch)
    trainer.progress.elapsed, trainer._started = 7.0, 1000.0
    clock.now = 1004.0
    assert trainer.elapsed() == 11.0
    trainer._paused_at = 1002.0
    clock.now = 1500.0
    assert trainer.elapsed() == 9.0  # 7 + the 2 s before the pause


def test_the_summary_of_a_failed_run_and_its_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer, events, clock = _trainer(tmp_path, monkeypatch)
    (tmp_path / "run").mkdir()
    progress = trainer.progress
    progress.epochs_done, progress.step, progress.elapsed, progress.best_epoch, progress.best_value = 1, 8, 3.0, 1, 0.625
    trainer._started, clock.now = 1000.0, 1001.23456

    finished = trainer._finish("failed", message="disk full", extra={"test_pert_l2": None, "test_acc_pgd": 0.5})

    expected = RunFinished(status="failed", epochs_done=1, step=8, wall_seconds=4.235, best_epoch=1, best_value=0.625,
                           message="disk full", extra={"test_acc_pgd": 0.5})
    assert finished == expected
    assert events == [LogMessage("error", "disk full"), expected]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary == {
        "status": "failed", "epochs_done": 1, "step": 8, "wall_seconds": 4.235, "best_epoch": 1, "best_value": 0.625,
        "test_acc_clean": None, "test_acc_adv": None, "test_acc_fgm_l2": None, "message": "disk full",
        "extra": {"test_acc_pgd": 0.5}, "preset": "tiny-name", "method": "baseline", "run_dir": str(tmp_path / "run"),
        "torch_threads": torch.get_num_threads(), "select_best_by": "val_acc_clean",
    }


def test_a_finished_runs_summary_holds_its_test_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer, events, _ = _trainer(tmp_path, monkeypatch)
    (tmp_path / "run").mkdir()
    trainer._finish("finished", test_acc_clean=0.75, test_acc_adv=0.25, test_acc_fgm_l2=0.5, extra={"test_pert_l2": 1.5})
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["test_acc_clean"], summary["test_acc_adv"], summary["test_acc_fgm_l2"]) == (0.75, 0.25, 0.5)
    assert summary["extra"] == {"test_pert_l2": 1.5} and summary["message"] == ""
    assert [type(event) for event in events] == [RunFinished]  # no error line for a finished run


def test_a_finished_runs_summary_is_kept_when_a_later_attempt_fails_but_not_when_it_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer, events, _ = _trainer(tmp_path, monkeypatch)
    summary = tmp_path / "run" / "summary.json"
    summary.parent.mkdir()
    kept = json.dumps({"status": "finished", "test_acc_clean": 0.75})
    summary.write_text(kept)

    trainer._finish("failed", message="out of memory")
    assert summary.read_text() == kept
    assert events[:2] == [LogMessage("error", "out of memory"), LogMessage("warning", f"{summary} keeps the finished run's figures")]

    trainer._finish("stopped")
    stopped = json.loads(summary.read_text())
    assert (stopped["status"], stopped["message"]) == ("stopped", "")
    assert not any(isinstance(event, LogMessage) for event in events[3:])  # a stop is no error


def test_a_finished_run_is_told_by_its_summarys_status(tmp_path: Path) -> None:
    assert not _finished_before(tmp_path)  # no summary
    for status, finished in (("failed", False), ("stopped", False), ("finished", True)):
        (tmp_path / "summary.json").write_text(json.dumps({"status": status}))
        assert _finished_before(tmp_path) is finished, status


def test_the_warning_when_the_data_changed_since_the_checkpoint() -> None:
    checkpoint = SimpleNamespace(path=Path("/runs/a/checkpoints/last.safetensors"),
                                 metadata={checkpointing.DATA_FINGERPRINT_KEY: "0123456789abcdef" * 4})
    setup = SimpleNamespace(data_fingerprint="fedcba9876543210" * 4)
    assert _data_changed_note(checkpoint, setup) == (  # type: ignore[arg-type]
        "the data differs from the data last.safetensors was trained on (SHA-256 0123456789ab, now fedcba987654): "
        "files were added, removed or changed; the run goes on with the data as it is now, so it no longer reproduces "
        "an uninterrupted run"
    )
    assert _data_changed_note(checkpoint, SimpleNamespace(data_fingerprint="0123456789abcdef" * 4)) is None  # type: ignore[arg-type]
    before_fingerprints = SimpleNamespace(path=checkpoint.path, metadata={})
    assert _data_changed_note(before_fingerprints, setup) is None  # type: ignore[arg-type]


def test_the_selection_rule_and_when_validation_runs_pgd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def trainer_for(config: RunConfig) -> Trainer:
        return _trainer(tmp_path, monkeypatch, config)[0]

    plain = trainer_for(_config(select_best_by="val_acc_fgm_l2"))
    assert plain._selection_rule() == "val_acc_fgm_l2" and plain._pgd_budget() is None
    assert trainer_for(_config("gat_attack"))._selection_rule() == "val_loss_g"  # the attacker's own loss, whatever the config says
    by_pgd = trainer_for(_config(select_best_by="val_acc_pgd"))._pgd_budget()
    assert by_pgd == PgdBudget.from_config(_config().eval)
    asked = replace(_config(), eval=EvalConfig(fgm_l2_eps=0.3, panel_size=0, pgd=True, pgd_steps=3))
    assert trainer_for(asked)._pgd_budget() == PgdBudget.from_config(asked.eval)


def test_a_stopped_tensorboard_writer_is_reported_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer, events, _ = _trainer(tmp_path, monkeypatch)
    trainer._warn_once_if_tensorboard_stopped()  # no writer: nothing to say
    failures = iter(["TensorBoard: the event files stopped (disk full)"])
    trainer._tensorboard = SimpleNamespace(failure=lambda: next(failures))  # type: ignore[assignment]
    trainer._warn_once_if_tensorboard_stopped()
    trainer._warn_once_if_tensorboard_stopped()
    assert events == [LogMessage("warning", "TensorBoard: the event files stopped (disk full)")]
    healthy = SimpleNamespace(failure=lambda: None)
    trainer._tensorboard = healthy  # type: ignore[assignment]
    trainer._warn_once_if_tensorboard_stopped()
    assert len(events) == 1 and trainer._tensorboard is healthy


def test_what_a_failure_says_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer, _, _ = _trainer(tmp_path, monkeypatch)
    assert trainer._what_is_kept() == "no checkpoint had been saved yet"
    last = trainer.paths.last_checkpoint
    last.parent.mkdir(parents=True)
    last.write_bytes(b"")
    assert trainer._what_is_kept() == f"the last good checkpoint is kept ({last})"
