"""A run's saved validation panels, by hand: the file each epoch gets, what it stores at which
precision, the message for each way a file can be unreadable, which files count as panels and in
what order, and which ones a resume drops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load, save

from gat_tui.events import LogMessage, PreviewPanel
from gat_tui.runs.panels import (
    PanelError,
    PanelStore,
    panel_bytes,
    panel_path,
    read_panel,
    remove_panels_after,
    saved_panels,
    write_panel,
)


def panel(epoch: int) -> PreviewPanel:
    images = np.array([[[[0.25, 0.5]]], [[[0.125, 1.0]]]], dtype=np.float32)  # 2 images, 1 channel, 1 x 2
    perturbations = np.array([[[[1e-4, -2e-3]]], [[[0.0, 3e-5]]]], dtype=np.float32)
    return PreviewPanel(epoch, images, perturbations, images + perturbations, [1, 0], [1, 1], [0, 1], ["cat", "dog"])


def header(data: bytes) -> dict[str, object]:
    size = int.from_bytes(data[:8], "little")
    parsed: dict[str, object] = json.loads(data[8 : 8 + size])
    return parsed


def test_each_epoch_has_its_file_numbered_to_three_digits() -> None:
    assert panel_path(Path("run"), 7) == Path("run/panels/epoch_007.safetensors")
    assert panel_path(Path("run"), 1234) == Path("run/panels/epoch_1234.safetensors")


def test_a_panel_file_holds_images_at_half_precision_perturbations_at_single_and_its_metadata() -> None:
    data = panel_bytes(panel(3))
    tensors = load(data)
    dtypes = {name: tensors[name].dtype for name in tensors}
    assert dtypes == {
        "images": np.float16, "perturbations": np.float32, "adversarial": np.float16,
        "labels": np.int64, "predicted_clean": np.int64, "predicted_adversarial": np.int64,
    }
    assert header(data)["__metadata__"] == {"format": "gat-tui panel 1", "epoch": "3", "class_names": '["cat", "dog"]'}
    np.testing.assert_array_equal(tensors["perturbations"], panel(3).perturbations)
    np.testing.assert_array_equal(tensors["labels"], [1, 0])
    np.testing.assert_array_equal(tensors["predicted_clean"], [1, 1])
    np.testing.assert_array_equal(tensors["predicted_adversarial"], [0, 1])
    # 0.25, 0.5, 0.125, 1.0 are exact in float16
    np.testing.assert_array_equal(tensors["images"], panel(3).images.astype(np.float16))


def test_a_written_panel_reads_back_field_by_field(tmp_path: Path) -> None:
    path = write_panel(tmp_path, panel(12))
    assert path == tmp_path / "panels" / "epoch_012.safetensors"
    read = read_panel(path)
    assert (read.epoch, read.labels, read.predicted_clean, read.predicted_adversarial, read.class_names) == (12, [1, 0], [1, 1], [0, 1], ["cat", "dog"])
    assert {read.images.dtype, read.perturbations.dtype, read.adversarial.dtype} == {np.dtype(np.float32)}
    np.testing.assert_array_equal(read.images, panel(12).images)
    np.testing.assert_array_equal(read.perturbations, panel(12).perturbations)
    np.testing.assert_array_equal(read.adversarial, panel(12).adversarial.astype(np.float16).astype(np.float32))
    assert all(type(value) is int for value in read.labels + read.predicted_clean + read.predicted_adversarial)
    assert all(type(name) is str for name in read.class_names)


def write(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(save(tensors, metadata=metadata))
    return path


def test_each_way_a_panel_file_is_unreadable_is_named(tmp_path: Path) -> None:
    whole = load(panel_bytes(panel(1)))
    good_metadata = {"format": "gat-tui panel 1", "epoch": "1", "class_names": '["cat", "dog"]'}
    missing = tmp_path / "panels" / "epoch_009.safetensors"
    with pytest.raises(PanelError) as error:
        read_panel(missing)
    assert str(error.value) == f"{missing}: cannot be read (No such file or directory)"
    cases = {
        "no-metadata": (whole, None, "ValueError: no metadata"),
        "no-epoch": (whole, {k: v for k, v in good_metadata.items() if k != "epoch"}, "KeyError: 'epoch'"),
        "bad-epoch": (whole, {**good_metadata, "epoch": "one"}, "ValueError: invalid literal for int() with base 10: 'one'"),
        "bad-names": (whole, {**good_metadata, "class_names": "[cat"}, "JSONDecodeError"),
        "no-labels": ({k: v for k, v in whole.items() if k != "labels"}, good_metadata, "KeyError: 'labels'"),
    }
    for name, (tensors, metadata, fault) in cases.items():
        path = write(tmp_path / name / "epoch_001.safetensors", tensors, metadata)
        with pytest.raises(PanelError) as error:
            read_panel(path)
        assert str(error.value).startswith(f"{path}: not a gat-tui panel file ("), name
        assert fault in str(error.value), name
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00[1, 2]xx")
    with pytest.raises(PanelError, match="not a gat-tui panel file"):
        read_panel(garbage)


def test_saved_panels_are_the_epoch_files_oldest_first(tmp_path: Path) -> None:
    assert saved_panels(tmp_path) == []
    folder = tmp_path / "panels"
    folder.mkdir()
    for name in ("epoch_010.safetensors", "epoch_002.safetensors", "epoch_1000.safetensors", "epoch_003.safetensors.tmp",
                 "epoch_x.safetensors", "best.safetensors", "xepoch_004.safetensors"):
        (folder / name).write_bytes(b"")
    (folder / "epoch_005.safetensors").mkdir()  # a folder of that name is no panel
    assert saved_panels(tmp_path) == [(2, folder / "epoch_002.safetensors"), (10, folder / "epoch_010.safetensors"),
                                      (1000, folder / "epoch_1000.safetensors")]


def test_a_resume_drops_the_panels_after_its_checkpoints_epoch(tmp_path: Path) -> None:
    for epoch in (1, 2, 3, 4):
        write_panel(tmp_path, panel(epoch))
    remove_panels_after(tmp_path, 2)
    assert [epoch for epoch, _ in saved_panels(tmp_path)] == [1, 2]
    remove_panels_after(tmp_path, 0)
    assert saved_panels(tmp_path) == []
    remove_panels_after(tmp_path / "no-run", 0)  # no panels folder: nothing to do


def test_the_store_writes_each_panel_event_and_nothing_else(tmp_path: Path) -> None:
    store = PanelStore(tmp_path)
    store(LogMessage("info", "not a panel"))
    assert not (tmp_path / "panels").exists()
    store(panel(5))
    assert [epoch for epoch, _ in saved_panels(tmp_path)] == [5]
    assert read_panel(panel_path(tmp_path, 5)).epoch == 5
