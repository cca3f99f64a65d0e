"""Each epoch's validation panel is kept in the run folder (panels/epoch_NNN.safetensors) and reads back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_gat_config

from gat_tui.config import RunConfig
from gat_tui.events import Event, PreviewPanel
from gat_tui.runs.folder import RunFolder
from gat_tui.runs.panels import PanelError, panel_path, read_panel, saved_panels, write_panel
from gat_tui.training.request import TrainingRequest
from gat_tui.training.trainer import Trainer


def a_panel(epoch: int) -> PreviewPanel:
    rng = np.random.default_rng(epoch)
    images = rng.random((3, 3, 8, 8), dtype=np.float32)
    perturbations = (rng.random((3, 3, 8, 8), dtype=np.float32) - 0.5) * 1e-3
    return PreviewPanel(epoch, images, perturbations, np.clip(images + perturbations, 0, 1), [0, 1, 2], [0, 2, 2], [1, 2, 0], ["a", "b", "c"])


def assert_same_panel(read: PreviewPanel, written: PreviewPanel) -> None:
    assert read.epoch == written.epoch
    assert read.labels == written.labels
    assert read.predicted_clean == written.predicted_clean
    assert read.predicted_adversarial == written.predicted_adversarial
    assert read.class_names == written.class_names
    np.testing.assert_array_equal(read.perturbations, written.perturbations)  # float32: exact, its scale is printed
    # images as float16: within half a step of an 8-bit display
    np.testing.assert_allclose(read.images, written.images, atol=1e-3)
    np.testing.assert_allclose(read.adversarial, written.adversarial, atol=1e-3)
    assert read.images.shape == written.images.shape and read.images.dtype == np.float32


def test_a_panel_round_trips(tmp_path: Path) -> None:
    panel = a_panel(7)
    path = write_panel(tmp_path, panel)
    assert path == tmp_path / "panels" / "epoch_007.safetensors"
    assert [entry.name for entry in path.parent.iterdir()] == ["epoch_007.safetensors"]  # no temporary left behind
    assert_same_panel(read_panel(path), panel)


def test_a_broken_panel_file_is_named(tmp_path: Path) -> None:
    path = panel_path(tmp_path, 2)
    path.parent.mkdir()
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(PanelError, match="epoch_002.safetensors"):
        read_panel(path)


def tiny_config(epochs: int) -> RunConfig:
    return tiny_gat_config("tiny_panels", epochs=epochs, panel_size=4, data={"train_size": 64, "val_size": 16, "test_size": 16, "eval_batch_size": 16})


def test_training_keeps_each_epochs_panel(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    emitted: list[PreviewPanel] = []

    def keep(event: Event) -> None:
        if isinstance(event, PreviewPanel):
            emitted.append(event)

    finished = Trainer(TrainingRequest(tiny_config(2), run_dir), subscribers=[keep]).run()
    assert finished.status == "finished"
    assert [epoch for epoch, _ in saved_panels(run_dir)] == [1, 2]
    assert [panel.epoch for panel in emitted] == [1, 2]
    for (_, path), panel in zip(saved_panels(run_dir), emitted):
        assert_same_panel(read_panel(path), panel)
        assert len(read_panel(path).labels) == 4
        assert path.stat().st_size < 20_000  # a few small images, not a checkpoint


def test_a_resumed_run_drops_the_panels_after_its_checkpoint(tmp_path: Path) -> None:
    """It trains those epochs again: a later panel left from before would be shown for the wrong weights."""
    run_dir = tmp_path / "run"
    for epoch in (1, 2, 3):
        write_panel(run_dir, a_panel(epoch))
    folder = RunFolder(run_dir, resuming=True)
    folder.claim()
    try:
        folder.start("name = 'x'\n", step=10, epochs_done=2)
    finally:
        folder.close()
    assert [epoch for epoch, _ in saved_panels(run_dir)] == [1, 2]
