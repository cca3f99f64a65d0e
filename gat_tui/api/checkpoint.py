"""`load`: a saved gat-tui checkpoint as a configuration and the networks it rebuilds."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from gat_tui.checkpoints import Checkpoint
from gat_tui.config import RunConfig
from gat_tui.runs.folder import RunPaths

__all__ = ["SavedModel", "load"]


@dataclass(frozen=True, eq=False)
class SavedModel:
    """A checkpoint read once (safetensors: never a pickle), checked when it was loaded.

    Attributes:
        path: the checkpoint file.
    """

    path: Path
    _checkpoint: Checkpoint = field(repr=False)

    @cached_property
    def config(self) -> RunConfig:
        """The run's configuration as the checkpoint recorded it, validated."""
        return self._checkpoint.config()

    @property
    def num_classes(self) -> int:
        return self._checkpoint.shape.num_classes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """`(C, H, W)` of the images the networks were trained on."""
        return self._checkpoint.image_shape

    @property
    def has_generator(self) -> bool:
        """Whether it holds a generator (GAT and GAT-attacker runs)."""
        return self._checkpoint.has_generator

    @property
    def epoch(self) -> int:
        """The epoch the checkpoint was written in."""
        return int(self._checkpoint.metadata["epoch"])

    def classifier(self, device: str | torch.device = "cpu") -> nn.Module:
        """The classifier rebuilt from its recorded architecture with its weights, in eval mode.

        It takes pixels in [0, 1] (any normalisation is inside it) and returns logits `[N, K]`.
        """
        return self._checkpoint.classifier(torch.device(device))

    def generator(self, device: str | torch.device = "cpu") -> nn.Module:
        """The generator with its weights, in eval mode; a `CheckpointError` if it holds none."""
        return self._checkpoint.generator(torch.device(device))


def load(path: str | Path) -> SavedModel:
    """Read a checkpoint file, or a run folder's best checkpoint (`checkpoints/best.safetensors`).

    A file that is not a gat-tui checkpoint (not safetensors, truncated, of wrong shapes or
    non-finite values) raises `gat_tui.checkpoints.CheckpointError` naming the file and the fault.
    """
    file = checkpoint_file(path)
    return SavedModel(file, Checkpoint.open(file))


def checkpoint_file(path: str | Path) -> Path:
    """A checkpoint file as given, or a run folder's best checkpoint (as `gat-tui eval` reads a folder)."""
    file = Path(path).expanduser()
    return RunPaths(file).best_checkpoint if file.is_dir() else file
