"""Each epoch's validation panel kept in the run folder, so earlier epochs can be shown again.

    <run>/panels/epoch_NNN.safetensors   one `PreviewPanel` per epoch

The file holds the panel's few images, their perturbations and adversarial images, the labels
and both predictions; the epoch and the class names go in its metadata. Images and adversarial
images are stored as float16 (they are shown on an 8-bit terminal; this halves the file: about
200 kB for eight 32x32 colour images), the perturbation as float32 (its scale is printed).
Written atomically by `PanelStore`, an engine event subscriber, when the trainer emits the panel.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

from gat_tui.atomic import write_bytes_atomically
from gat_tui.events import Event, PreviewPanel

PANELS_DIR = "panels"
_NAME = re.compile(r"^epoch_(\d+)\.safetensors$")


class PanelError(ValueError):
    """A panel file that cannot be read; the message names it and the fault."""


def panel_path(run_dir: Path, epoch: int) -> Path:
    return run_dir / PANELS_DIR / f"epoch_{epoch:03d}.safetensors"


def panel_bytes(panel: PreviewPanel) -> bytes:
    tensors: dict[str, np.ndarray] = {
        "images": np.ascontiguousarray(panel.images, dtype=np.float16),
        "perturbations": np.ascontiguousarray(panel.perturbations, dtype=np.float32),
        "adversarial": np.ascontiguousarray(panel.adversarial, dtype=np.float16),
        "labels": np.asarray(panel.labels, dtype=np.int64),
        "predicted_clean": np.asarray(panel.predicted_clean, dtype=np.int64),
        "predicted_adversarial": np.asarray(panel.predicted_adversarial, dtype=np.int64),
    }
    metadata = {"format": "gat-tui panel 1", "epoch": str(panel.epoch), "class_names": json.dumps(list(panel.class_names))}
    return bytes(save(tensors, metadata=metadata))


def write_panel(run_dir: Path, panel: PreviewPanel) -> Path:
    path = panel_path(run_dir, panel.epoch)
    # not fsynced: a panel lost to a power cut costs a picture, not a run
    write_bytes_atomically(path, panel_bytes(panel), durable=False)
    return path


def read_panel(path: Path) -> PreviewPanel:
    """The panel in `path`; PanelError names the file and what is wrong with it."""
    try:
        data = path.read_bytes()
        tensors = load(data)
        metadata = _metadata(data)
        class_names = json.loads(metadata["class_names"])
        epoch = int(metadata["epoch"])
        return PreviewPanel(
            epoch=epoch,
            images=tensors["images"].astype(np.float32),
            perturbations=tensors["perturbations"].astype(np.float32),
            adversarial=tensors["adversarial"].astype(np.float32),
            labels=[int(v) for v in tensors["labels"]],
            predicted_clean=[int(v) for v in tensors["predicted_clean"]],
            predicted_adversarial=[int(v) for v in tensors["predicted_adversarial"]],
            class_names=[str(name) for name in class_names],
        )
    except OSError as error:
        raise PanelError(f"{path}: cannot be read ({error.strerror or error})") from None
    except (SafetensorError, KeyError, ValueError, TypeError) as error:
        raise PanelError(f"{path}: not a gat-tui panel file ({type(error).__name__}: {error})") from None


def _metadata(data: bytes) -> dict[str, str]:
    """The safetensors header's __metadata__ (safetensors.numpy.load leaves it out)."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict):
        raise ValueError("no metadata")
    return metadata


def saved_panels(run_dir: Path) -> list[tuple[int, Path]]:
    """(epoch, file) of the panels kept in `run_dir`, oldest first; none if it has no panels folder."""
    folder = run_dir / PANELS_DIR
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    found = []
    for entry in entries:
        match = _NAME.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def remove_panels_after(run_dir: Path, epochs_done: int) -> None:
    """A resumed run drops the panels of epochs after its checkpoint: it trains those epochs again."""
    for epoch, path in saved_panels(run_dir):
        if epoch > epochs_done:
            path.unlink(missing_ok=True)


class PanelStore:
    """Subscriber: writes each `PreviewPanel` the trainer emits to `panels/epoch_NNN.safetensors`."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def __call__(self, event: Event) -> None:
        if isinstance(event, PreviewPanel):
            write_panel(self.run_dir, event)
