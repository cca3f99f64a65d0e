"""`gat-tui export RUN_DIR|SWEEP_DIR --tensorboard OUT`: event files rebuilt from metrics.jsonl."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import Cli
from tensorboard_events import assert_same, expected_scalars, scalars, tiny

from gat_tui.training.request import TrainingRequest
from gat_tui.training.trainer import Trainer


@pytest.mark.slow
def test_export_of_a_run_without_event_files_and_of_a_sweep(cli: Cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert Trainer(TrainingRequest(tiny(epochs=1, tensorboard=False), run_dir)).run().status == "finished"
    assert not (run_dir / "tensorboard").exists()

    result = cli("export", str(run_dir), "--tensorboard", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "hyperparameters and test figures" in result.stdout and "tensorboard --logdir" in result.stdout
    assert_same(scalars(tmp_path / "out"), expected_scalars(run_dir))

    sweep = tmp_path / "sweep"
    (sweep / "runs/gat").mkdir(parents=True)
    (sweep / "sweep.toml").write_text("")
    for seed in (0, 1):
        shutil.copytree(run_dir, sweep / f"runs/gat/seed-{seed}")
    result = cli("export", str(sweep), "--tensorboard", str(tmp_path / "sweep-out"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "sweep-out/gat").iterdir()) == ["seed-0", "seed-1"]
    assert_same(scalars(tmp_path / "sweep-out/gat/seed-1"), expected_scalars(run_dir))

    again = cli("export", str(sweep), "--tensorboard", str(tmp_path / "sweep-out"))
    assert again.returncode == 2 and "already holds TensorBoard event files" in again.stderr
    nothing = cli("export", str(tmp_path / "nothing"), "--tensorboard", str(tmp_path / "x"))
    assert nothing.returncode == 2 and "no such folder" in nothing.stderr
