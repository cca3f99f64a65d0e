"""What the trainer tells its subscribers besides the figures: the level and text of its warnings,
the run's clock in each epoch summary, the names of the extra test figures, and the settings it
asks validation for.

Each test was written for survivors of mutmut's whole run of `training/trainer.py` (issue 22,
session 10) and seen failing with its mutant planted by hand. Where a validation figure drives
what is said, validation is scripted (the trainer's `evaluate_split` replaced).
"""

from __future__ import annotations

import errno
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

import gat_tui.training.trainer as trainer_module
from gat_tui.checkpoints import NetworkShape, save_checkpoint
from gat_tui.config import CheckpointConfig, DataConfig, EvalConfig, RunConfig, TrainConfig
from gat_tui.device import prefers_channels_last
from gat_tui.events import (
    CheckpointSaved,
    EpochSummary,
    EvaluationDone,
    Event,
    LogMessage,
    RunFinished,
    RunStarted,
    StepMetrics,
    StepProgress,
)
from gat_tui.models import AllConvClassifier
from gat_tui.training.control import TrainingControl
from gat_tui.training.request import TrainingRequest
from gat_tui.training.trainer import Trainer
from gat_tui.training.validation import SplitFigures


def _config(method: str = "baseline", epochs: int = 2, fgm_l2_eps: float = 0.5, keep_epochs: bool = False) -> RunConfig:
    return RunConfig(
        name="messages",
        method=method,
        device="cpu",
        data=DataConfig(dataset="synthetic", image_size=8, num_classes=3, train_size=48, val_size=16, test_size=16, batch_size=16),
        train=TrainConfig(epochs=epochs, log_every=1, max_steps_per_epoch=1),
        eval=EvalConfig(panel_size=0, fgm_l2_eps=fgm_l2_eps),
        checkpoint=CheckpointConfig(keep_epochs=keep_epochs),
    )


def _figures(acc_clean: float = 0.5, pert_l2: float | None = None, **other: Any) -> SplitFigures:
    values: dict[str, Any] = {"acc_adv": None, "acc_fgm_l2": 0.5, "pert_linf": None, "loss_g": None} | other
    return SplitFigures(acc_clean=acc_clean, pert_l2=pert_l2, **values)


def _script(monkeypatch: pytest.MonkeyPatch, figures: list[SplitFigures]) -> None:
    """The n-th evaluation (validation of epoch n, then the test figures) gives figures[n - 1], then the last again."""
    scripted = iter(figures)
    monkeypatch.setattr(trainer_module, "evaluate_split", lambda *args, **kwargs: next(scripted, figures[-1]))


def _run(
    config: RunConfig,
    run_dir: Path,
    resume_from: Path | None = None,
    control: TrainingControl | None = None,
    also: Sequence[Callable[[Event], None]] = (),
) -> tuple[RunFinished, list[Event]]:
    """Run to its end; the events it sent, in order (`also` sees each after it is kept)."""
    events: list[Event] = []
    finished = Trainer(TrainingRequest(config, run_dir, resume_from=resume_from), subscribers=[events.append, *also], control=control).run()
    return finished, events


def _stopped_after(event_type: type, step_or_epoch: int) -> tuple[TrainingControl, Callable[[Event], None]]:
    """A control whose stop is asked for when an event of `event_type` reaches that epoch (EpochSummary) or step."""
    control = TrainingControl()
    field = "epoch" if event_type is EpochSummary else "step"

    def stop_there(event: Event) -> None:
        if isinstance(event, event_type) and getattr(event, field) == step_or_epoch:
            control.stop.set()

    return control, stop_there


def _logged(events: list[Event]) -> list[tuple[str, str]]:
    return [(event.level, event.text) for event in events if isinstance(event, LogMessage)]


def test_a_gat_generator_that_does_not_perturb_is_flagged_once_as_a_warning_after_the_epoch_that_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a 2-epoch run: the watch fires after both epochs stay below 10 % of eval.fgm_l2_eps = 0.5
    _script(monkeypatch, [_figures(pert_l2=0.0123), _figures(pert_l2=0.0234)])
    finished, events = _run(_config("gat", epochs=2, fgm_l2_eps=0.5), tmp_path / "idle")
    assert finished.status == "finished", finished.message
    warnings = [text for level, text in _logged(events) if level == "warning"]
    assert len(warnings) == 1
    assert "‖G(Δ)‖₂ = 0.0234" in warnings[0] and "below 0.05" in warnings[0] and "for 2 epochs in a row" in warnings[0]
    assert "gat.lr_g" in warnings[0]
    # said right after the epoch summary that showed it, not at the end of the run
    kinds = [type(event).__name__ for event in events if isinstance(event, (EpochSummary, LogMessage)) and getattr(event, "level", "warning") == "warning"]
    assert kinds[-2:] == ["EpochSummary", "LogMessage"]


def test_a_gat_generator_that_perturbs_is_not_flagged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the same run with the second epoch's norm above the threshold: the figure decides, not the method alone
    _script(monkeypatch, [_figures(pert_l2=0.0123), _figures(pert_l2=0.06)])
    finished, events = _run(_config("gat", epochs=2, fgm_l2_eps=0.5), tmp_path / "perturbs")
    assert finished.status == "finished", finished.message
    assert [text for level, text in _logged(events) if level == "warning"] == []


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_validation_figure_that_is_not_finite_fails_the_run_naming_the_figure_and_the_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: float
) -> None:
    _script(monkeypatch, [_figures(acc_clean=0.5), _figures(acc_clean=bad)])
    finished, events = _run(_config("baseline", epochs=3), tmp_path / "diverged")
    assert finished.status == "failed" and finished.epochs_done == 1
    assert finished.message.startswith(f"validation val_acc_clean became {bad} in epoch 2; ")
    assert [event.epoch for event in events if isinstance(event, EpochSummary)] == [1]


def test_each_epoch_summary_carries_the_run_clock_to_the_millisecond_and_the_epochs_own_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _script(monkeypatch, [_figures()])
    monkeypatch.setattr(Trainer, "elapsed", lambda self: 12.3456789)
    started = time.perf_counter()
    finished, events = _run(_config("baseline", epochs=2), tmp_path / "clock")
    run_seconds = time.perf_counter() - started
    summaries = [event for event in events if isinstance(event, EpochSummary)]
    assert [summary.time for summary in summaries] == [12.346, 12.346]
    # each epoch's own seconds, measured inside the run: positive, and together no longer than the run
    assert all(isinstance(summary.epoch_seconds, float) and summary.epoch_seconds > 0 for summary in summaries)
    assert sum(summary.epoch_seconds for summary in summaries) <= run_seconds
    assert finished.wall_seconds == 12.346


def test_the_test_figures_beyond_the_table_are_reported_under_their_own_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _script(monkeypatch, [_figures(), _figures(pert_l2=0.75, pert_linf=0.03125, acc_pgd=0.25)])
    finished, _ = _run(_config("baseline", epochs=1), tmp_path / "extra")
    assert finished.status == "finished", finished.message
    assert finished.extra == {"test_pert_l2": 0.75, "test_pert_linf": 0.03125, "test_acc_pgd": 0.25}


def test_early_stop_is_said_as_information_with_the_rule_and_the_epochs_waited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    victim = tmp_path / "victim.safetensors"
    save_checkpoint(victim, {"classifier": AllConvClassifier(num_classes=3, in_channels=3)}, NetworkShape(3, 3, 8, 8, 0.0), "", epoch=1, step=1)
    config = _config("gat_attack", epochs=6)
    config = replace(config, attack=replace(config.attack, classifier=str(victim), patience=2))
    # val_loss_g, lower is better: epoch 1 is best, epochs 2 and 3 are not better
    _script(monkeypatch, [_figures(pert_l2=1.0, loss_g=value, acc_adv=0.5) for value in (0.4, 0.5, 0.6)])
    finished, events = _run(config, tmp_path / "attack")
    assert finished.status == "finished" and finished.epochs_done == 3, finished.message
    assert ("info", "early stop: no better val_loss_g for 2 epochs") in _logged(events)


def test_a_best_file_rewritten_on_resume_is_saved_under_its_own_reason_and_said_as_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the state an older gat-tui left when killed between writing `last` and `best` of epoch 2
    _script(monkeypatch, [_figures(acc_clean=0.5), _figures(acc_clean=0.8)])
    config = _config("baseline", epochs=3, keep_epochs=True)
    run_dir = tmp_path / "run"
    control, stop_after_epoch_2 = _stopped_after(EpochSummary, 2)
    first, _ = _run(config, run_dir, control=control, also=[stop_after_epoch_2])
    assert first.status == "stopped" and first.best_epoch == 2
    best = run_dir / "checkpoints" / "best.safetensors"
    best.write_bytes((run_dir / "checkpoints" / "epoch-001.safetensors").read_bytes())

    _script(monkeypatch, [_figures(acc_clean=0.6)])
    resumed, events = _run(config, run_dir, resume_from=run_dir / "checkpoints" / "last.safetensors")
    assert resumed.status == "finished" and resumed.best_epoch == 2, resumed.message
    repaired = [event for event in events if isinstance(event, CheckpointSaved) and event.path == str(best)]
    assert [(event.reason, event.epoch) for event in repaired][0] == ("best (repaired on resume)", 2)
    assert ("warning", f"rewrote {best} for best epoch 2") in _logged(events)


@pytest.mark.parametrize("clip", [True, False])
def test_validation_and_test_figures_are_asked_for_with_the_runs_fgm_size_clipping_and_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clip: bool
) -> None:
    # what evaluate_split computes from these is pinned by hand in tests/unit; here, that the run passes its own settings
    asked: list[tuple[Any, ...]] = []
    original = trainer_module.evaluate_split

    def spy(*args: Any) -> SplitFigures:
        asked.append(args[3:])
        return original(*args)

    monkeypatch.setattr(trainer_module, "evaluate_split", spy)
    config = _config("baseline", epochs=2, fgm_l2_eps=0.375)
    config = replace(config, data=replace(config.data, eval_batch_size=7), perturbation=replace(config.perturbation, clip=clip))
    finished, _ = _run(config, tmp_path / "run")
    assert finished.status == "finished", finished.message
    # two validations and the test figures, in the layout the setup chose; no PGD figure unless asked for
    assert asked == [(7, 0.375, clip, prefers_channels_last(torch.device("cpu")), None)] * 3


def test_a_run_resumed_at_an_epochs_end_says_where_it_starts_and_trains_every_remaining_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config("baseline", epochs=3)
    # 64 training images make 4 batches of 16, of which each epoch trains 2
    config = replace(config, data=replace(config.data, train_size=80), train=replace(config.train, max_steps_per_epoch=2))
    monkeypatch.setattr(Trainer, "elapsed", lambda self: 12.3456789)  # the clock the checkpoint records
    straight, _ = _run(config, tmp_path / "straight")
    run_dir = tmp_path / "run"
    control, stop_after_epoch_1 = _stopped_after(EpochSummary, 1)
    first, _ = _run(config, run_dir, control=control, also=[stop_after_epoch_1])
    assert (first.status, first.epochs_done, first.step) == ("stopped", 1, 2)

    last = run_dir / "checkpoints" / "last.safetensors"
    resumed, events = _run(config, run_dir, resume_from=last)
    # 80 images less the 16 held out for validation
    assert events[0] == RunStarted(
        run_dir=str(run_dir), preset="messages", method="baseline", device="cpu", dataset="synthetic", num_classes=3,
        train_images=64, steps_per_epoch=2, epochs=3, start_epoch=2, start_step=2, start_seconds=12.346,
    )  # fmt: skip
    # epochs 2 and 3 train their two steps each, in the order a run without the stop trained them
    assert (resumed.status, resumed.epochs_done, resumed.step) == ("finished", 3, 6)
    assert resumed.test_acc_clean == straight.test_acc_clean
    assert [event.step for event in events if isinstance(event, EpochSummary)] == [4, 6]
    assert ("info", f"resumed from {last} at epoch 2, step 2") in _logged(events)


def test_a_stop_inside_an_epoch_saves_last_as_stopped_and_progress_events_keep_their_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trainer_module, "PROGRESS_SECONDS", 600.0)  # no step of this run comes ten minutes after the last event
    config = _config("baseline", epochs=2)
    config = replace(config, data=replace(config.data, train_size=80), train=replace(config.train, max_steps_per_epoch=4))
    control, stop_at_step_2 = _stopped_after(StepMetrics, 2)
    finished, events = _run(config, tmp_path / "run", control=control, also=[stop_at_step_2])
    assert (finished.status, finished.step, finished.epochs_done) == ("stopped", 2, 0)
    saves = [(event.reason, Path(event.path).name, event.step) for event in events if isinstance(event, CheckpointSaved)]
    assert saves == [("stopped", "last.safetensors", 2)]
    assert not any(isinstance(event, StepProgress) for event in events)


def test_a_network_that_needs_the_default_layout_is_said_as_information_before_training(tmp_path: Path) -> None:
    config = _config("baseline", epochs=1)
    config = replace(config, model=replace(config.model, classifier="support_factory:view_classifier"))
    finished, events = _run(config, tmp_path / "run")
    assert finished.status == "finished", finished.message
    notes = [(index, event) for index, event in enumerate(events) if isinstance(event, LogMessage) and "memory layout" in event.text]
    assert len(notes) == 1
    index, note = notes[0]
    assert note.level == "info" and note.text.startswith("training in the default memory layout: the classifier")
    started = next(position for position, event in enumerate(events) if isinstance(event, RunStarted))
    assert index < started  # said before training starts


def test_a_file_that_cannot_be_read_while_preparing_fails_the_run_naming_it_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EIO, "Input/output error", "/data/cifar/data_batch_1")

    monkeypatch.setattr(trainer_module, "prepare", unreadable)
    finished, events = _run(_config("baseline", epochs=1), tmp_path / "run")
    assert (finished.status, finished.message) == ("failed", "cannot read /data/cifar/data_batch_1: Input/output error")
    assert ("error", "cannot read /data/cifar/data_batch_1: Input/output error") in _logged(events)
    assert not (tmp_path / "run" / "summary.json").exists()


def test_a_save_and_an_evaluation_asked_for_between_reports_report_the_steps_so_far_then_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trainer_module, "PROGRESS_SECONDS", 0.0)  # a progress event at every step
    config = _config("baseline", epochs=1)
    config = replace(config, data=replace(config.data, train_size=80), train=replace(config.train, max_steps_per_epoch=4, log_every=4))
    control = TrainingControl()

    def ask_at_step_2(event: Event) -> None:
        if isinstance(event, StepProgress) and event.step == 2:
            control.save_now.set()
            control.evaluate_now.set()

    finished, events = _run(config, tmp_path / "run", control=control, also=[ask_at_step_2])
    assert finished.status == "finished", finished.message
    # the two steps before the request are reported then; the next report covers steps 3 and 4 only
    reports = [event for event in events if isinstance(event, StepMetrics)]
    assert [report.step for report in reports] == [2, 4]
    assert all(report.images_per_second > 0 for report in reports)
    saves = [(event.reason, event.step) for event in events if isinstance(event, CheckpointSaved)]
    assert saves[0] == ("asked", 2)
    evaluations = [event for event in events if isinstance(event, EvaluationDone)]
    assert [(evaluation.epoch, evaluation.step) for evaluation in evaluations] == [(1, 2)]
    kinds = [type(event).__name__ for event in events if isinstance(event, (StepMetrics, CheckpointSaved, EvaluationDone))]
    assert kinds[:3] == ["StepMetrics", "CheckpointSaved", "EvaluationDone"]


def test_a_second_ctrl_c_ends_the_run_as_stopped_with_what_a_resume_does_then_raises(tmp_path: Path) -> None:
    def interrupt_at_first_report(event: Event) -> None:
        if isinstance(event, StepMetrics):
            raise KeyboardInterrupt

    events: list[Event] = []
    with pytest.raises(KeyboardInterrupt):
        Trainer(TrainingRequest(_config("baseline", epochs=1), tmp_path / "run"), subscribers=[events.append, interrupt_at_first_report]).run()
    finished = [event for event in events if isinstance(event, RunFinished)]
    assert [(event.status, event.message) for event in finished] == [("stopped", "aborted; resume continues from the last checkpoint")]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["status"], summary["message"]) == ("stopped", "aborted; resume continues from the last checkpoint")


def test_the_requests_data_folder_is_where_the_data_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Path | None] = []
    original = trainer_module.prepare

    def spy(config: RunConfig, data_dir: Path | None) -> Any:
        asked.append(data_dir)
        return original(config, data_dir)

    monkeypatch.setattr(trainer_module, "prepare", spy)
    request = TrainingRequest(_config("baseline", epochs=1), tmp_path / "run", data_dir=tmp_path / "datasets")
    assert Trainer(request).run().status == "finished"
    assert asked == [tmp_path / "datasets"]
