"""The engine on tiny synthetic data: events, run folder, stop, divergence, selection."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import gat_tui.training.setup as training_setup
from gat_tui.checkpoints import read_checkpoint
from gat_tui.config import DataConfig, EvalConfig, GatConfig, RunConfig, TrainConfig
from gat_tui.events import CheckpointSaved, EpochSummary, Event, PreviewPanel, RunFinished, RunStarted, StepMetrics
from gat_tui.methods import StepResult
from gat_tui.training.control import TrainingControl
from gat_tui.training.request import TrainingRequest
from gat_tui.training.trainer import Trainer


def tiny_config(method: str = "gat", epochs: int = 2) -> RunConfig:
    return RunConfig(
        name="tiny",
        method=method,
        device="cpu",
        data=DataConfig(
            dataset="synthetic", image_size=8, num_classes=3, train_size=96, val_size=32, test_size=32,
            batch_size=16, eval_batch_size=32,
        ),
        train=TrainConfig(epochs=epochs, log_every=2),
        gat=GatConfig(lr_g=1e-3),
        eval=EvalConfig(fgm_l2_eps=0.3, panel_size=3),
    )


def run(config: RunConfig, run_dir: Path, stop: threading.Event | None = None) -> tuple[RunFinished, list[Event]]:
    events: list[Event] = []
    finished = Trainer(TrainingRequest(config, run_dir), subscribers=[events.append], control=TrainingControl(stop=stop or threading.Event())).run()
    return finished, events


def test_a_run_emits_events_and_writes_its_folder(tmp_path: Path) -> None:
    finished, events = run(tiny_config(), tmp_path / "run")
    assert finished.status == "finished"
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    steps = [e for e in events if isinstance(e, StepMetrics)]
    epochs = [e for e in events if isinstance(e, EpochSummary)]
    panels = [e for e in events if isinstance(e, PreviewPanel)]
    # 96 - 32 validation = 64 training images: 4 steps of 16 an epoch, a report every 2 steps
    assert [e.step for e in steps] == [2, 4, 6, 8]
    assert [e.epoch for e in steps] == [1, 1, 2, 2]
    assert len(epochs) == 2
    # is_best follows the rule: the first epoch, then only a strictly higher clean accuracy
    assert [e.is_best for e in epochs] == [True, epochs[1].val_acc_clean > epochs[0].val_acc_clean]
    assert panels[0].images.shape == (3, 3, 8, 8) and len(panels[0].labels) == 3
    assert all(e.loss_g is not None and e.pert_l2 is not None for e in steps)

    root = tmp_path / "run"
    lines = [json.loads(line) for line in (root / "metrics.jsonl").read_text().splitlines()]
    assert {line["event"] for line in lines} == {"step", "epoch"}
    for line in lines:
        assert {"event", "epoch", "step", "time"} <= set(line)
        if line["event"] == "step":
            assert {"loss_f", "loss_g", "pert_l2", "pert_linf"} <= set(line)
        else:
            assert {"val_acc_clean", "val_acc_adv", "val_acc_fgm_l2"} <= set(line)
    summary = json.loads((root / "summary.json").read_text())
    expected_best = 2 if epochs[1].val_acc_clean > epochs[0].val_acc_clean else 1
    assert summary["status"] == "finished" and summary["best_epoch"] == finished.best_epoch == expected_best
    assert summary["best_value"] == epochs[expected_best - 1].val_acc_clean
    assert summary["test_acc_clean"] * 32 == pytest.approx(round(summary["test_acc_clean"] * 32))  # a count over 32 test images
    assert "method = \"gat\"" in (root / "config.toml").read_text()
    tensors, metadata = read_checkpoint(root / "checkpoints" / "best.safetensors")
    assert any(key.startswith("generator.") for key in tensors)
    assert json.loads(metadata["shape"])["num_classes"] == 3


def test_baseline_has_no_own_perturbation_figure(tmp_path: Path) -> None:
    finished, events = run(tiny_config("baseline", epochs=1), tmp_path / "run")
    epoch = next(e for e in events if isinstance(e, EpochSummary))
    assert epoch.val_acc_adv is None and finished.test_acc_adv is None
    line = [json.loads(text) for text in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if '"epoch"' in text][-1]
    assert line["val_acc_adv"] is None and "loss_g" not in line


def test_stop_saves_a_checkpoint_and_reports_stopped(tmp_path: Path) -> None:
    stop = threading.Event()

    def stop_on_first_report(event: Event) -> None:
        if isinstance(event, StepMetrics):
            stop.set()

    trainer = Trainer(TrainingRequest(tiny_config(epochs=5), tmp_path / "run"), subscribers=[stop_on_first_report], control=TrainingControl(stop=stop))
    finished = trainer.run()
    assert finished.status == "stopped" and finished.step == 2 and finished.epochs_done == 0
    _, metadata = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert metadata["step"] == "2"
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "stopped"


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_build = training_setup.build_method

    def build_then_break_in_epoch_2(*args, **kwargs):  # type: ignore[no-untyped-def]
        method = real_build(*args, **kwargs)
        real_step = method.train_step
        calls = {"n": 0}

        def step(images, labels, draw_batch):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            result = real_step(images, labels, draw_batch)
            if calls["n"] > 5:
                return StepResult(loss_f=torch.tensor(float("nan")), loss_g=result.loss_g)
            return result

        method.train_step = step  # type: ignore[method-assign]
        return method

    monkeypatch.setattr(training_setup, "build_method", build_then_break_in_epoch_2)
    finished, events = run(tiny_config(epochs=3), tmp_path / "run")
    assert finished.status == "failed"
    assert "loss_f became nan" in finished.message and "epoch 2" in finished.message
    _, metadata = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert metadata["epoch"] == "1"  # nothing written after the loss broke
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "failed"


def test_a_failure_before_training_writes_nothing(tmp_path: Path) -> None:
    config = replace(tiny_config(), data=replace(tiny_config().data, dataset="cifar10"))
    events: list[Event] = []
    finished = Trainer(TrainingRequest(config, tmp_path / "run", data_dir=tmp_path / "empty"), subscribers=[events.append]).run()
    # the download is refused offline or fails: either way a clear message, and no run folder
    assert finished.status == "failed" and "cifar-10-python.tar.gz" in finished.message
    assert not (tmp_path / "run").exists()


def test_gat_attack_selects_on_validation_generator_loss(tmp_path: Path) -> None:
    victim, _ = run(tiny_config("baseline", epochs=1), tmp_path / "victim")
    config = replace(
        tiny_config("gat_attack", epochs=3),
        attack=replace(RunConfig().attack, classifier=str(tmp_path / "victim/checkpoints/best.safetensors")),
    )
    finished, events = run(config, tmp_path / "attack")
    assert finished.status == "finished"
    summaries = [e for e in events if isinstance(e, EpochSummary)]
    assert all(e.val_loss_g is not None for e in summaries)
    best = min(summaries, key=lambda e: e.val_loss_g)  # type: ignore[arg-type,return-value]
    assert finished.best_epoch == best.epoch
    saved = [e for e in events if isinstance(e, CheckpointSaved) and e.reason == "best"]
    assert saved[-1].epoch == best.epoch


def test_each_checkpoint_says_why_it_was_saved_and_progress_moves_with_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gat_tui.training.trainer as trainer_module
    from gat_tui.config import CheckpointConfig
    from gat_tui.events import StepProgress

    monkeypatch.setattr(trainer_module, "PROGRESS_SECONDS", 0.0)  # a progress event at every step
    config = replace(tiny_config(epochs=2), checkpoint=CheckpointConfig(every_steps=3, keep_epochs=True))
    finished, events = run(config, tmp_path / "run")
    assert finished.status == "finished"
    started = events[0]
    assert isinstance(started, RunStarted) and (started.start_epoch, started.start_step, started.steps_per_epoch) == (1, 0, 4)
    saves = [(e.reason, Path(e.path).name, e.step) for e in events if isinstance(e, CheckpointSaved) and e.reason != "best"]
    assert saves == [  # 4 steps an epoch: every 3rd step, then each epoch's copy before its last
        ("steps", "last.safetensors", 3), ("epoch copy", "epoch-001.safetensors", 4), ("epoch", "last.safetensors", 4),
        ("steps", "last.safetensors", 6), ("epoch copy", "epoch-002.safetensors", 8), ("epoch", "last.safetensors", 8),
    ]
    assert [(e.epoch, e.step) for e in events if isinstance(e, StepProgress)] == [(1, 1), (1, 2), (1, 3), (1, 4), (2, 5), (2, 6), (2, 7), (2, 8)]


def test_an_expected_error_during_training_ends_the_run_failed_with_its_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gat_tui.data import DataError
    from gat_tui.methods.gat import GenerativeAdversarialTraining

    def unreadable(*args: object, **kwargs: object) -> object:
        raise DataError("the training images went away")

    monkeypatch.setattr(GenerativeAdversarialTraining, "train_step", unreadable)
    finished, events = run(tiny_config(epochs=1), tmp_path / "run")
    assert (finished.status, finished.message) == ("failed", "the training images went away")
    assert json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))["status"] == "failed"


def test_a_full_disk_during_training_ends_the_run_failed_saying_what_could_not_be_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gat_tui.methods.gat import GenerativeAdversarialTraining

    def full(*args: object, **kwargs: object) -> object:
        raise OSError(28, "No space left on device", str(tmp_path / "run" / "metrics.jsonl"))

    monkeypatch.setattr(GenerativeAdversarialTraining, "train_step", full)
    finished, _ = run(tiny_config(epochs=1), tmp_path / "run")
    assert finished.status == "failed"
    assert finished.message.startswith(f"cannot write {tmp_path / 'run' / 'metrics.jsonl'}: the disk is full; ")


def test_a_run_whose_files_cannot_be_started_writes_no_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # e.g. metrics.jsonl replaced by a folder: the folder is left as it was, to be used again once fixed
    def cannot(self: Trainer) -> None:
        raise OSError(21, "Is a directory", str(tmp_path / "run" / "metrics.jsonl"))

    monkeypatch.setattr(Trainer, "_start_files", cannot)
    finished, _ = run(tiny_config(epochs=1), tmp_path / "run")
    assert (finished.status, finished.message) == ("failed", f"cannot write {tmp_path / 'run' / 'metrics.jsonl'}: Is a directory")
    assert not (tmp_path / "run" / "summary.json").exists()


def test_when_not_even_the_summary_can_be_written_the_run_still_ends_failed_naming_the_first_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gat_tui.training.trainer as trainer_module
    from gat_tui.methods.gat import GenerativeAdversarialTraining

    metrics = tmp_path / "run" / "metrics.jsonl"

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device", str(metrics))

    monkeypatch.setattr(GenerativeAdversarialTraining, "train_step", full)
    monkeypatch.setattr(trainer_module, "write_summary", full)
    finished, events = run(tiny_config(epochs=1), tmp_path / "run")
    assert (finished.status, finished.message) == ("failed", f"cannot write {metrics}: the disk is full")
    assert events[-1] == finished


def test_an_unexpected_error_is_recorded_as_a_failure_then_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gat_tui.methods.gat import GenerativeAdversarialTraining

    def bug(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(GenerativeAdversarialTraining, "train_step", bug)
    with pytest.raises(RuntimeError, match="^a bug$"):
        run(tiny_config(epochs=1), tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    assert (summary["status"], summary["message"]) == ("failed", "RuntimeError: a bug")


def test_a_run_folder_that_cannot_be_created_fails_the_run_without_a_trace(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    finished, _ = run(tiny_config(epochs=1), tmp_path / "file" / "run")
    assert finished.status == "failed" and finished.message.startswith(f"cannot create the run folder {tmp_path / 'file'}")
    assert (tmp_path / "file").read_text() == "not a folder"


def test_a_checkpoint_whose_pending_figures_cannot_be_read_is_refused_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gat_tui.training.step_metrics import PendingMetricsError, StepAccumulator

    run(tiny_config(epochs=1), tmp_path / "run")
    last = tmp_path / "run" / "checkpoints" / "last.safetensors"

    def damaged(*args: object, **kwargs: object) -> None:
        raise PendingMetricsError("pending step sums of another length")

    monkeypatch.setattr(StepAccumulator, "from_checkpoint", damaged)
    finished = Trainer(TrainingRequest(tiny_config(epochs=2), tmp_path / "run", None, resume_from=last)).run()
    assert (finished.status, finished.message) == ("failed", f"{last}: pending step sums of another length")
