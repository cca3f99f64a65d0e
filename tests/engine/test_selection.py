"""Which epoch is best: strictly better replaces, a tie keeps the earlier epoch, lower is better for val_loss_g.

The validation function is scripted per epoch, so the rule is tested on figures chosen to tell
the best epoch from the worst, the first and the last.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

import gat_tui.training.trainer as trainer_module
from gat_tui.checkpoints import NetworkShape, read_checkpoint, save_checkpoint
from gat_tui.config import DataConfig, EvalConfig, RunConfig, TrainConfig
from gat_tui.events import CheckpointSaved, EpochSummary, Event
from gat_tui.models import AllConvClassifier
from gat_tui.training.request import TrainingRequest
from gat_tui.training.trainer import Trainer
from gat_tui.training.validation import SplitFigures


def quick_config(method: str, epochs: int) -> RunConfig:
    return RunConfig(
        name="selection",
        method=method,
        device="cpu",
        data=DataConfig(dataset="synthetic", image_size=8, num_classes=3, train_size=48, val_size=16, test_size=16, batch_size=16),
        train=TrainConfig(epochs=epochs, log_every=1, max_steps_per_epoch=1),
        eval=EvalConfig(panel_size=0),
    )


def script_validation(monkeypatch: pytest.MonkeyPatch, values: list[float], metric: str) -> None:
    """Epoch e's validation gives values[e - 1]; the final test evaluation gets a neutral figure."""
    scripted: Iterator[float] = iter(values)

    def scripted_evaluate(*args: Any, **kwargs: Any) -> SplitFigures:
        value = next(scripted, 0.5)
        if metric == "val_loss_g":
            return SplitFigures(acc_clean=0.5, acc_adv=0.5, acc_fgm_l2=0.5, pert_l2=1.0, pert_linf=0.1, loss_g=value)
        return SplitFigures(acc_clean=value, acc_adv=None, acc_fgm_l2=0.5, pert_l2=None, pert_linf=None, loss_g=None)

    monkeypatch.setattr(trainer_module, "evaluate_split", scripted_evaluate)


def run(config: RunConfig, run_dir: Path) -> tuple[Any, list[EpochSummary], list[CheckpointSaved]]:
    events: list[Event] = []
    finished = Trainer(TrainingRequest(config, run_dir), subscribers=[events.append]).run()
    assert finished.status == "finished", finished.message
    summaries = [event for event in events if isinstance(event, EpochSummary)]
    best_saves = [event for event in events if isinstance(event, CheckpointSaved) and event.reason == "best"]
    return finished, summaries, best_saves


def test_higher_validation_accuracy_is_better_and_a_tie_keeps_the_earlier_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # epoch:           1     2     3 (tie)  4 (worse) 5 (worst)
    script_validation(monkeypatch, [0.50, 0.75, 0.75, 0.60, 0.25], "val_acc_clean")
    finished, summaries, best_saves = run(quick_config("baseline", epochs=5), tmp_path / "run")
    assert [summary.is_best for summary in summaries] == [True, True, False, False, False]
    assert finished.best_epoch == 2 and finished.best_value == 0.75
    assert [save.epoch for save in best_saves] == [1, 2]
    _, metadata = read_checkpoint(tmp_path / "run/checkpoints/best.safetensors")
    assert metadata["epoch"] == "2"
    _, last = read_checkpoint(tmp_path / "run/checkpoints/last.safetensors")
    assert last["epoch"] == "5"


def test_a_later_strictly_better_epoch_replaces_the_best(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script_validation(monkeypatch, [0.50, 0.25, 0.875], "val_acc_clean")
    finished, summaries, _ = run(quick_config("baseline", epochs=3), tmp_path / "run")
    assert [summary.is_best for summary in summaries] == [True, False, True]
    assert finished.best_epoch == 3
    _, metadata = read_checkpoint(tmp_path / "run/checkpoints/best.safetensors")
    assert metadata["epoch"] == "3"


def victim_checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    classifier = AllConvClassifier(num_classes=3, in_channels=3)
    save_checkpoint(path, {"classifier": classifier}, NetworkShape(3, 3, 8, 8, 0.0), "", epoch=1, step=1)
    return path


def test_the_gat_attacker_keeps_the_lowest_validation_loss_and_the_earlier_of_a_tie(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    victim = victim_checkpoint(tmp_path / "victim.safetensors")
    config = quick_config("gat_attack", epochs=4)
    config = replace(config, attack=replace(config.attack, classifier=str(victim), patience=5))
    # epoch:        1    2    3 (tie)  4 (higher: worse)
    script_validation(monkeypatch, [0.9, 0.4, 0.4, 0.7], "val_loss_g")
    finished, summaries, best_saves = run(config, tmp_path / "attack")
    assert [summary.is_best for summary in summaries] == [True, True, False, False]
    assert [summary.val_loss_g for summary in summaries] == [0.9, 0.4, 0.4, 0.7]
    assert finished.best_epoch == 2 and finished.best_value == 0.4
    assert [save.epoch for save in best_saves] == [1, 2]
    _, metadata = read_checkpoint(tmp_path / "attack/checkpoints/best.safetensors")
    assert metadata["epoch"] == "2"


def test_the_gat_attacker_stops_after_patience_epochs_without_a_lower_loss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    victim = victim_checkpoint(tmp_path / "victim.safetensors")
    config = quick_config("gat_attack", epochs=8)
    config = replace(config, attack=replace(config.attack, classifier=str(victim), patience=2))
    script_validation(monkeypatch, [0.9, 0.5, 0.5, 0.6, 0.1, 0.1], "val_loss_g")
    finished, summaries, _ = run(config, tmp_path / "attack")
    # epochs 3 and 4 are no better than epoch 2: two epochs without improvement, so no epoch 5
    assert [summary.epoch for summary in summaries] == [1, 2, 3, 4]
    assert finished.best_epoch == 2 and finished.epochs_done == 4


def test_select_best_by_val_acc_pgd_keeps_the_epoch_with_the_best_validation_pgd_accuracy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # epoch:          1     2 (best PGD)  3 (best FGM-L2)   4 (best clean)
    clean = [0.50, 0.60, 0.70, 0.90]
    fgm = [0.30, 0.35, 0.50, 0.20]
    pgd = [0.10, 0.40, 0.30, 0.05]
    budgets: list[Any] = []
    scripted = iter(zip(clean, fgm, pgd))

    def scripted_evaluate(*args: Any, **kwargs: Any) -> SplitFigures:
        budgets.append(args[-1])  # the validation PGD's budget, or None when it is off
        acc_clean, acc_fgm, acc_pgd = next(scripted, (0.5, 0.5, 0.5))
        return SplitFigures(acc_clean=acc_clean, acc_adv=None, acc_fgm_l2=acc_fgm, pert_l2=None, pert_linf=None, loss_g=None, acc_pgd=acc_pgd)

    monkeypatch.setattr(trainer_module, "evaluate_split", scripted_evaluate)
    config = quick_config("baseline", epochs=4)
    config = replace(config, train=replace(config.train, select_best_by="val_acc_pgd"), eval=replace(config.eval, pgd_steps=3, pgd_images=8))
    finished, summaries, best_saves = run(config, tmp_path / "run")
    assert [summary.val_acc_pgd for summary in summaries] == pgd
    assert [summary.is_best for summary in summaries] == [True, True, False, False]
    assert finished.best_epoch == 2 and finished.best_value == 0.40
    assert [save.epoch for save in best_saves] == [1, 2]
    _, metadata = read_checkpoint(tmp_path / "run/checkpoints/best.safetensors")
    assert metadata["epoch"] == "2"
    # the PGD figure was asked for with [eval]'s budget, every epoch and for the test figures
    assert all(budget is not None and (budget.steps, budget.images) == (3, 8) for budget in budgets)
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    assert summary["select_best_by"] == "val_acc_pgd" and summary["best_epoch"] == 2


def test_select_best_by_val_acc_fgm_l2_keeps_the_epoch_with_the_best_fgm_accuracy_and_pgd_stays_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    budgets: list[Any] = []
    scripted = iter(zip([0.5, 0.9, 0.6], [0.2, 0.1, 0.3]))

    def scripted_evaluate(*args: Any, **kwargs: Any) -> SplitFigures:
        budgets.append(args[-1])
        acc_clean, acc_fgm = next(scripted, (0.5, 0.5))
        return SplitFigures(acc_clean=acc_clean, acc_adv=None, acc_fgm_l2=acc_fgm, pert_l2=None, pert_linf=None, loss_g=None)

    monkeypatch.setattr(trainer_module, "evaluate_split", scripted_evaluate)
    config = quick_config("baseline", epochs=3)
    finished, summaries, _ = run(replace(config, train=replace(config.train, select_best_by="val_acc_fgm_l2")), tmp_path / "run")
    assert [summary.is_best for summary in summaries] == [True, False, True]
    assert finished.best_epoch == 3 and finished.best_value == 0.3
    assert budgets == [None] * 4  # off unless used
    assert [summary.val_acc_pgd for summary in summaries] == [None] * 3
    assert json.loads((tmp_path / "run/summary.json").read_text())["select_best_by"] == "val_acc_fgm_l2"


def test_the_test_figures_are_the_best_epochs_not_the_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation scripted so that epoch 2 of 4 is best; the test evaluation itself is real, and its
    figure must be the best checkpoint's accuracy on the test split, computed here by hand."""
    from gat_tui.checkpoints import Checkpoint
    from gat_tui.data import load_splits, to_model_input
    from gat_tui.runs.folder import RunPaths

    real = trainer_module.evaluate_split
    scripted = iter([0.5, 0.9, 0.6, 0.7])

    def validation_then_real(*args: Any, **kwargs: Any) -> SplitFigures:
        value = next(scripted, None)
        if value is None:  # the test split, after the last epoch
            return real(*args, **kwargs)
        return SplitFigures(acc_clean=value, acc_adv=None, acc_fgm_l2=0.5, pert_l2=None, pert_linf=None, loss_g=None)

    monkeypatch.setattr(trainer_module, "evaluate_split", validation_then_real)
    config = quick_config("baseline", epochs=4)
    config = replace(config, data=replace(config.data, train_size=192, test_size=96), train=replace(config.train, max_steps_per_epoch=10, lr_f=3e-3))
    finished, _, _ = run(config, tmp_path / "run")
    assert finished.best_epoch == 2

    splits = load_splits(config.data)
    images = to_model_input(splits.test_images, channels_last=False)

    def accuracy_of(path: Path) -> float:
        network = Checkpoint.open(path).classifier(torch.device("cpu"))
        network.eval()
        with torch.no_grad():
            return (network(images).argmax(dim=1) == splits.test_labels).float().mean().item()

    paths = RunPaths(tmp_path / "run")
    best, last = accuracy_of(paths.best_checkpoint), accuracy_of(paths.last_checkpoint)
    assert best != last  # otherwise this run could not tell them apart
    assert finished.test_acc_clean == pytest.approx(best)
