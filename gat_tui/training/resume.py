"""Working out what `gat-tui resume TARGET` continues: the run folder, checkpoint and config."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from gat_tui.checkpoints import Checkpoint
from gat_tui.runs.folder import RunPaths
from gat_tui.runs.lock import lock_holder
from gat_tui.training.request import TrainingRequest


class ResumeError(RuntimeError):
    """The target cannot be resumed; the message says why and what would work."""


def resume_request(target: Path, overrides: Iterable[str] = (), data_dir: Path | None = None) -> TrainingRequest:
    """A run folder resumes from its last checkpoint; a checkpoint file inside a run folder from itself."""
    if target.is_dir():
        paths = RunPaths(target)
        _refuse_if_locked(paths)
        checkpoint = paths.last_checkpoint
        if not checkpoint.exists():
            raise ResumeError(
                f"{target}: no checkpoints/last.safetensors; the run stopped before its first checkpoint, "
                f"so start it again: gat-tui run {paths.config} --out {target}"
            )
    elif target.is_file():
        checkpoint = target
        paths = RunPaths(target.parent.parent)
        if not paths.config.exists():
            raise ResumeError(f"{target}: not inside a run folder (no {paths.config}); resume needs the run folder")
    else:
        raise ResumeError(f"{target}: no such run folder or checkpoint file")
    _refuse_if_locked(paths)
    config = Checkpoint.open(checkpoint).config(overrides)
    return TrainingRequest(config, paths.root, data_dir, checkpoint)


def _refuse_if_locked(paths: RunPaths) -> None:
    holder = lock_holder(paths.root)
    if holder is not None:
        raise ResumeError(f"{paths.root}: still being trained by {holder.describe()}; stop it first")
