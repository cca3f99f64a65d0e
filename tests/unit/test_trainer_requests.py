"""What the trainer does at a step boundary when asked to save, evaluate, pause, continue or stop
(the dashboard's keys), without training: its checkpoint writer and evaluation are replaced by
recorders, and the clock is set by the test."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import gat_tui.training.trainer as trainer_module
from gat_tui.config import DataConfig, RunConfig
from gat_tui.events import EvaluationDone, Event, PauseChanged
from gat_tui.training.control import TrainingControl
from gat_tui.training.request import TrainingRequest
from gat_tui.training.trainer import Trainer

FIGURES = SimpleNamespace(acc_clean=0.5, acc_adv=0.25, acc_fgm_l2=0.125, pert_l2=1.5, acc_pgd=0.0625)


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def perf_counter(self) -> float:
        return self.now


def _trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, subscriber: Any = None) -> tuple[Trainer, list[Event], list[Any], _Clock]:
    clock = _Clock(1000.0)
    monkeypatch.setattr(trainer_module, "time", clock)
    events: list[Event] = []
    calls: list[Any] = []
    config = RunConfig(name="tiny", method="baseline", device="cpu", data=DataConfig(dataset="synthetic"))
    trainer = Trainer(TrainingRequest(config, tmp_path / "run"), subscribers=[events.append, *([subscriber] if subscriber else [])],
                      control=TrainingControl())
    # each records whether it was given the run's setup (SETUP), and what else it was given
    trainer._save = lambda setup, path, reason: calls.append(("save", setup is SETUP, path, reason))  # type: ignore[method-assign]
    trainer._evaluate = lambda setup, images, labels: calls.append(("evaluate", setup is SETUP, images, labels)) or FIGURES  # type: ignore[method-assign]
    trainer.progress.epoch, trainer.progress.step = 2, 7
    return trainer, events, calls, clock


SETUP = SimpleNamespace(splits=SimpleNamespace(val_images="validation images", val_labels="validation labels"))


def test_a_save_and_an_evaluation_asked_for_are_done_once_at_the_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer, events, calls, _ = _trainer(tmp_path, monkeypatch)
    control = trainer.control
    control.save_now.set()
    control.evaluate_now.set()
    assert trainer._answer_requests(SETUP) is True  # type: ignore[arg-type]
    assert calls == [("save", True, trainer.paths.last_checkpoint, "asked"), ("evaluate", True, "validation images", "validation labels")]
    assert events == [EvaluationDone(2, 7, 0.5, 0.25, 0.125, 1.5, 0.0625)]
    assert not control.save_now.is_set() and not control.evaluate_now.is_set()
    assert trainer._answer_requests(SETUP) is True and len(calls) == 2  # type: ignore[arg-type]  # nothing asked: nothing done


def _until(condition: Any, seconds: float = 5.0) -> None:
    """Wait (at most `seconds`, so a broken trainer fails the test instead of hanging it) for `condition()`."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        threading.Event().wait(0.01)


def test_a_pause_holds_the_run_and_its_clock_and_still_evaluates_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer, events, calls, clock = _trainer(tmp_path, monkeypatch)
    trainer._started, trainer.progress.elapsed = 990.0, 0.0  # 10 s trained when the pause starts
    control = trainer.control

    def user() -> None:
        _until(lambda: trainer._paused_at is not None)
        clock.now = 1010.0  # ten seconds paused
        control.evaluate_now.set()
        _until(lambda: not control.evaluate_now.is_set())  # answered inside the pause
        control.pause.clear()
        _until(lambda: trainer._paused_at is None)
        control.stop.set()  # only reached in time if the pause did not end: the test then fails below

    control.pause.set()
    threading.Thread(target=user, daemon=True).start()
    assert trainer._answer_requests(SETUP) is True  # type: ignore[arg-type]
    assert events == [PauseChanged(True, 7), EvaluationDone(2, 7, 0.5, 0.25, 0.125, 1.5, 0.0625), PauseChanged(False, 7)]
    assert calls == [("evaluate", True, "validation images", "validation labels")]
    assert trainer._paused_at is None and trainer._started == 1000.0
    assert trainer.elapsed() == 10.0  # the ten paused seconds are not training time


def test_a_stop_ends_a_pause_and_the_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer, events, _, _ = _trainer(tmp_path, monkeypatch)
    trainer.control.pause.set()
    stopper = threading.Timer(0.1, trainer.control.stop.set)
    stopper.start()
    assert trainer._answer_requests(SETUP) is False  # type: ignore[arg-type]
    stopper.join()
    assert events == [PauseChanged(True, 7), PauseChanged(False, 7)]


def test_a_pause_asked_together_with_a_stop_does_not_pause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer, events, _, _ = _trainer(tmp_path, monkeypatch)
    trainer.control.pause.set()
    trainer.control.stop.set()
    assert trainer._answer_requests(SETUP) is False  # type: ignore[arg-type]
    assert events == [] and trainer._paused_at is None
