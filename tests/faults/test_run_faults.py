"""Faults around a training's files: kills mid-write, two writers, full disks, diverged state.

Each test here failed on the code before the reliability fixes (one writer per folder, `best`
written before `last`, checked resumed state, clean errors for file-system faults).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import Cli
from safetensors.torch import load_file

from gat_tui.checkpoints import Checkpoint
from gat_tui.config import CheckpointConfig, DataConfig, EvalConfig, GatConfig, RunConfig, TrainConfig, config_to_toml
from gat_tui.events import Event, PauseChanged, StepMetrics
from gat_tui.runs.identity import RunMarker, write_marker
from gat_tui.runs.status import run_status
from gat_tui.training.control import TrainingControl
from gat_tui.training.request import TrainingRequest
from gat_tui.training.trainer import Trainer


def tiny_config(method: str = "gat", epochs: int = 3, keep_epochs: bool = False) -> RunConfig:
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
        eval=EvalConfig(panel_size=0),
        checkpoint=CheckpointConfig(keep_epochs=keep_epochs),
    )


def weights(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(path)).items() if k.startswith(("classifier.", "generator.", "optimizer."))}


def assert_same_weights(left: Path, right: Path) -> None:
    a, b = weights(left), weights(right)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs between {left} and {right}"


# A training in a subprocess that SIGKILLs itself halfway through writing one file: the
# temporary file holds half the bytes, the rename never happens.
KILL_DURING_WRITE = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import gat_tui.atomic as atomic
    from gat_tui.config import load_preset
    from gat_tui.training.request import TrainingRequest
    from gat_tui.training.trainer import Trainer

    victim, occurrence, preset, run_dir = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    original = atomic.write_bytes_atomically
    seen = []

    def write(path, data, durable=True):
        seen.extend([path.name] if path.name == victim else [])
        if len(seen) == occurrence and path.name == victim:
            half = path.parent / f".{path.name}.killed.tmp"
            half.write_bytes(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        original(path, data, durable)

    import gat_tui.checkpoints as checkpoints
    checkpoints.write_bytes_atomically = write
    Trainer(TrainingRequest(load_preset(preset), run_dir)).run()
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["best.safetensors", "epoch-002.safetensors"])
def test_a_kill_during_an_epoch_end_write_resumes_to_the_same_best_and_last(tmp_path: Path, victim: str) -> None:
    config = tiny_config(method="baseline", keep_epochs=True)
    config = replace(config, data=replace(config.data, train_size=160))
    straight = Trainer(TrainingRequest(config, tmp_path / "straight")).run()
    assert straight.status == "finished"
    # the kill must hit a write after epoch 1: `best` is written again only when an epoch improves
    if victim == "best.safetensors":
        epochs = [json.loads(line) for line in (tmp_path / "straight/metrics.jsonl").read_text().splitlines()]
        improving = [line["epoch"] for line in epochs if line["event"] == "epoch" and line["is_best"]]
        assert improving[0] == 1 and len(improving) >= 2, "this data set no longer improves after epoch 1"
        victim_epoch, occurrence = improving[1], 2
    else:
        victim_epoch, occurrence = 2, 1
    preset = tmp_path / "tiny.toml"
    preset.write_text(config_to_toml(config))
    killed = tmp_path / "killed"
    command = [sys.executable, "-c", KILL_DURING_WRITE, victim, str(occurrence), str(preset), str(killed)]
    process = subprocess.run(command, timeout=300)
    assert process.returncode == -signal.SIGKILL
    last_before = Checkpoint.open(killed / "checkpoints/last.safetensors")
    assert int(last_before.metadata["epoch"]) == victim_epoch - 1, "last must not move past an epoch whose files are unwritten"

    resumed = Trainer(TrainingRequest(config, killed, resume_from=killed / "checkpoints/last.safetensors")).run()
    assert resumed.status == "finished"
    assert not list((killed / "checkpoints").glob(".*.tmp")), "the half-written temporary was not swept away"
    for name in ("last.safetensors", "best.safetensors", "epoch-001.safetensors", "epoch-002.safetensors", "epoch-003.safetensors"):
        assert_same_weights(tmp_path / "straight/checkpoints" / name, killed / "checkpoints" / name)
    ours, theirs = (json.loads((folder / "summary.json").read_text()) for folder in (killed, tmp_path / "straight"))
    assert (ours["best_epoch"], ours["test_acc_clean"]) == (theirs["best_epoch"], theirs["test_acc_clean"])


def _stopped_after_epoch(config: RunConfig, run_dir: Path, epoch: int) -> None:
    stop = threading.Event()

    def at_epoch_end(event: Event) -> None:
        if getattr(event, "epoch", 0) >= epoch and type(event).__name__ == "EpochSummary":
            stop.set()

    finished = Trainer(TrainingRequest(config, run_dir), subscribers=[at_epoch_end], control=TrainingControl(stop=stop)).run()
    assert finished.status == "stopped" and finished.epochs_done == epoch


def _scripted_validation(monkeypatch: pytest.MonkeyPatch, accuracies: list[float]) -> None:
    """Validation reports these clean accuracies, one per call, so the test fixes which epoch is best."""
    import gat_tui.training.trainer as trainer_module

    original = trainer_module.evaluate_split
    calls = {"count": 0}

    def scripted(*args, **kwargs):  # type: ignore[no-untyped-def]
        figures = original(*args, **kwargs)
        value = accuracies[min(calls["count"], len(accuracies) - 1)]
        calls["count"] += 1
        return replace(figures, acc_clean=value)

    monkeypatch.setattr(trainer_module, "evaluate_split", scripted)


def test_a_best_file_behind_the_best_epoch_is_rewritten_on_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the state an older gat-tui left when killed between writing `last` and `best` of epoch 2
    _scripted_validation(monkeypatch, [0.5, 0.8, 0.6, 0.6])
    config = tiny_config(method="baseline", epochs=3, keep_epochs=True)
    run_dir = tmp_path / "run"
    _stopped_after_epoch(config, run_dir, 2)
    checkpoints = run_dir / "checkpoints"
    (checkpoints / "best.safetensors").write_bytes((checkpoints / "epoch-001.safetensors").read_bytes())
    _scripted_validation(monkeypatch, [0.6, 0.6])
    resumed = Trainer(TrainingRequest(config, run_dir, resume_from=checkpoints / "last.safetensors")).run()
    assert resumed.status == "finished" and resumed.best_epoch == 2
    assert Checkpoint.open(checkpoints / "best.safetensors").metadata["epoch"] == "2"
    assert_same_weights(checkpoints / "best.safetensors", checkpoints / "epoch-002.safetensors")


def test_a_best_file_of_another_epoch_whose_weights_are_gone_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _scripted_validation(monkeypatch, [0.8, 0.5])
    config = tiny_config(method="baseline", epochs=3, keep_epochs=True)
    run_dir = tmp_path / "run"
    _stopped_after_epoch(config, run_dir, 2)
    checkpoints = run_dir / "checkpoints"
    (checkpoints / "best.safetensors").write_bytes((checkpoints / "epoch-002.safetensors").read_bytes())
    refused = Trainer(TrainingRequest(config, run_dir, resume_from=checkpoints / "last.safetensors")).run()
    assert refused.status == "failed"
    assert "holds epoch 2" in refused.message and "records epoch 1 as best" in refused.message


@pytest.mark.slow  # two subprocesses of the installed script
def test_a_second_writer_is_refused_while_the_first_trains(tmp_path: Path, cli: Cli) -> None:
    run_dir = tmp_path / "run"
    control = TrainingControl()
    control.pause.set()  # the first trainer holds the folder, paused at its first step
    paused = threading.Event()
    events: list[Event] = []

    def note(event: Event) -> None:
        events.append(event)
        if isinstance(event, PauseChanged) and event.paused:
            paused.set()

    first = Trainer(TrainingRequest(tiny_config(epochs=1), run_dir), subscribers=[note], control=control)
    thread = threading.Thread(target=first.run)
    thread.start()
    try:
        assert paused.wait(120)
        assert run_status(run_dir) == "running"
        second = Trainer(TrainingRequest(tiny_config(epochs=1), run_dir)).run()
        assert second.status == "failed" and "being trained by this process" in second.message
        (tmp_path / "tiny.toml").write_text(config_to_toml(tiny_config(epochs=1)))
        from_cli = cli("run", str(tmp_path / "tiny.toml"), "--headless", "--out", str(run_dir))
        assert from_cli.returncode == 2 and "being trained by process" in from_cli.stderr and "Traceback" not in from_cli.stderr
        resume = cli("resume", str(run_dir), "--headless")
        assert resume.returncode == 2 and "still being trained" in resume.stderr
    finally:
        control.pause.clear()
        thread.join(120)
    assert run_status(run_dir) == "finished"
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [line["step"] for line in lines if line["event"] == "step"]
    assert steps == sorted(set(steps)) and [line["epoch"] for line in lines if line["event"] == "epoch"] == [1]


@pytest.mark.slow  # three subprocesses of the installed script
def test_out_refuses_a_folder_that_is_not_a_run_and_a_file(tmp_path: Path, cli: Cli) -> None:
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "notes.txt").write_text("do not overwrite")
    result = cli("run", "synthetic_smoke", "--headless", "--out", str(precious))
    assert result.returncode == 2 and "holds no run" in result.stderr and str(precious) in result.stderr
    assert sorted(p.name for p in precious.iterdir()) == ["notes.txt"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out, fragment in ((a_file, "is a file"), (a_file / "under", "cannot create the run folder")):
        result = cli("run", "synthetic_smoke", "--headless", "--out", str(out))
        assert result.returncode in (1, 2) and fragment in result.stderr + result.stdout and "Traceback" not in result.stderr


def test_a_run_killed_before_its_first_checkpoint_starts_again_in_its_folder(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_marker(run_dir, RunMarker.new())  # what a run writes first, as it starts
    (run_dir / "config.toml").write_text(config_to_toml(tiny_config(epochs=1)))
    (run_dir / "metrics.jsonl").write_text('{"event": "step", "epoch": 1, "step": 2, "time": 0.1, "loss_f": 9.9}\n')
    finished = Trainer(TrainingRequest(tiny_config(epochs=1), run_dir)).run()
    assert finished.status == "finished"
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(line.get("loss_f") != 9.9 for line in lines), "the dead run's metrics were kept"
    steps = [line["step"] for line in lines if line["event"] == "step"]
    assert steps == sorted(set(steps))


def test_a_full_disk_fails_the_run_cleanly_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gat_tui.checkpoints as checkpoints

    original = checkpoints.write_bytes_atomically
    writes = {"count": 0}

    def full_after_first(path: Path, data: bytes, durable: bool = True) -> None:
        writes["count"] += 1
        if writes["count"] > 2:  # epoch 1's best and last fit, nothing after
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(path, data, durable)

    monkeypatch.setattr(checkpoints, "write_bytes_atomically", full_after_first)
    finished = Trainer(TrainingRequest(tiny_config(method="baseline"), tmp_path / "run")).run()
    assert finished.status == "failed"
    assert "the disk is full" in finished.message and "last good checkpoint is kept" in finished.message
    assert Checkpoint.open(tmp_path / "run/checkpoints/last.safetensors").metadata["epoch"] == "1"
    assert json.loads((tmp_path / "run/summary.json").read_text())["status"] == "failed"


def test_a_divergence_before_any_checkpoint_says_none_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gat_tui.methods.standard import StandardTraining

    original = StandardTraining.train_step

    def nan_step(self: StandardTraining, images: torch.Tensor, labels: torch.Tensor, draw):  # type: ignore[no-untyped-def]
        result = original(self, images, labels, draw)
        return replace(result, loss_f=result.loss_f * float("nan"))

    monkeypatch.setattr(StandardTraining, "train_step", nan_step)
    finished = Trainer(TrainingRequest(tiny_config(method="baseline"), tmp_path / "run")).run()
    assert finished.status == "failed" and "loss_f became nan" in finished.message
    assert "no checkpoint had been saved yet" in finished.message and "kept" not in finished.message


def test_a_non_finite_optimizer_state_is_never_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gat_tui.methods.standard import StandardTraining

    original = StandardTraining.train_step

    def poisoned_moments(self: StandardTraining, images: torch.Tensor, labels: torch.Tensor, draw):  # type: ignore[no-untyped-def]
        result = original(self, images, labels, draw)
        for state in self.classifier_optimizer.state.values():
            state["exp_avg_sq"].fill_(float("inf"))  # as a learning rate of 300 does, with finite losses
        return result

    monkeypatch.setattr(StandardTraining, "train_step", poisoned_moments)
    finished = Trainer(TrainingRequest(tiny_config(method="baseline"), tmp_path / "run")).run()
    assert finished.status == "failed" and "exp_avg_sq" in finished.message and "NaN or infinite" in finished.message
    assert not (tmp_path / "run/checkpoints/last.safetensors").exists()
    assert not (tmp_path / "run/checkpoints/best.safetensors").exists()


def test_an_abort_by_a_second_ctrl_c_leaves_a_stopped_resumable_run(tmp_path: Path) -> None:
    def abort(event: Event) -> None:
        if isinstance(event, StepMetrics) and event.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(TrainingRequest(tiny_config(method="baseline"), tmp_path / "run"), subscribers=[abort]).run()
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    assert summary["status"] == "stopped" and "KeyboardInterrupt" not in summary["message"]
    assert run_status(tmp_path / "run") == "stopped"
