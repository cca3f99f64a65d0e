"""What to train: one frozen request built by the CLI, the dashboard, resume and the sweep runner alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gat_tui.config import RunConfig


@dataclass(frozen=True)
class TrainingRequest:
    """A run to start (`resume_from` None) or to continue from a checkpoint, into `run_dir`."""

    config: RunConfig
    run_dir: Path
    data_dir: Path | None = None
    resume_from: Path | None = None
