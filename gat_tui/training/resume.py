"""Working out what `gat-tui resume TARGET` continues: the run folder, checkpoint and config."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from gat_tui.architectures import Architecture
from gat_tui.checkpoints import Checkpoint
from gat_tui.config import RunConfig
from gat_tui.runs.folder import RunPaths
from gat_tui.runs.identity import RunFolderError, check_checkpoint_belongs
from gat_tui.runs.lock import lock_holder
from gat_tui.runs.status import read_summary
from gat_tui.training.request import TrainingRequest
from gat_tui.training.state import StateError, checked_progress


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
    opened = Checkpoint.open(checkpoint)
    config = opened.config(overrides)
    _refuse_other_networks(checkpoint, opened.architecture, Architecture.from_config(config.model))
    try:
        check_checkpoint_belongs(paths.root, checkpoint)
    except RunFolderError as error:
        raise ResumeError(str(error)) from None
    _refuse_to_shorten_or_redo(paths, checkpoint, opened, config)
    return TrainingRequest(config, paths.root, data_dir, checkpoint)


def _refuse_to_shorten_or_redo(paths: RunPaths, checkpoint: Path, opened: Checkpoint, config: RunConfig) -> None:
    """A finished run stays as it is unless asked to train longer; no resume asks for fewer epochs than were done."""
    try:
        progress = checked_progress(json.loads(opened.metadata.get("training_state", "{}")).get("progress"))
        saved_epochs = opened.config().train.epochs
    except (StateError, ValueError, AttributeError):
        return  # a damaged state: restoring it names the fault
    done, asked = progress.epochs_done, config.train.epochs
    if asked < done:
        raise ResumeError(
            f"{checkpoint}: the run has trained {done} epochs already, so --epochs {asked} cannot be reached; "
            f"nothing was changed. To train it further, pass --epochs N with N > {done}"
        )
    summary = read_summary(paths.root)
    if summary is not None and summary["status"] == "finished" and asked <= max(done, saved_epochs):
        raise ResumeError(
            f"{paths.root}: this run has finished ({done} epochs; its test figures are in {paths.summary}); "
            f"nothing to resume, nothing was changed. To train it further: gat-tui resume {paths.root} --epochs {done + 10}"
        )


# each Architecture field and the [model] key that sets it
_MODEL_KEYS = {
    "classifier": "model.classifier", "normalize_mean": "model.normalize.mean", "normalize_std": "model.normalize.std",
    "generator": "model.generator", "generator_width": "model.generator_width", "generator_depth": "model.generator_depth",
}


def _refuse_other_networks(checkpoint: Path, held: Architecture, asked: Architecture) -> None:
    """A checkpoint resumes only into the networks it holds: an override of [model] that changes them is refused."""
    changed = [
        f"{key} = {getattr(asked, name)!r} (it holds {getattr(held, name)!r})"
        for name, key in _MODEL_KEYS.items()
        if getattr(held, name) != getattr(asked, name)
    ]
    if changed:
        raise ResumeError(
            f"{checkpoint}: cannot resume with {'; '.join(changed)}: its weights are of the networks it was trained "
            "with. Resume without that --set, or start a new run with it (gat-tui run PRESET --set ...)"
        )


def _refuse_if_locked(paths: RunPaths) -> None:
    holder = lock_holder(paths.root)
    if holder is not None:
        raise ResumeError(f"{paths.root}: still being trained by {holder.describe()}; stop it first")
