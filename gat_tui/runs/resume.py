"""Working out what `gat-tui resume TARGET` continues: the run folder, checkpoint and config."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gat_tui.checkpoints import read_checkpoint
from gat_tui.config import RunConfig, config_from_toml
from gat_tui.runs.folder import RunPaths


class ResumeError(RuntimeError):
    """The target cannot be resumed; the message says why and what would work."""


@dataclass(frozen=True)
class ResumePlan:
    run_dir: Path
    checkpoint: Path
    config: RunConfig


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_pid(paths: RunPaths) -> int | None:
    """The pid of the process training this run now, or None."""
    try:
        pid = int(paths.pid.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid != os.getpid() and process_alive(pid) else None


def resume_plan(target: Path, overrides: list[str]) -> ResumePlan:
    """A run folder resumes from its last checkpoint; a checkpoint file inside a run folder from itself."""
    if target.is_dir():
        paths = RunPaths(target)
        checkpoint = paths.last_checkpoint
        if not checkpoint.exists():
            raise ResumeError(f"{target}: no checkpoints/last.safetensors; the run stopped before its first checkpoint")
    elif target.is_file():
        checkpoint = target
        paths = RunPaths(target.parent.parent)
        if not paths.config.exists():
            raise ResumeError(f"{target}: not inside a run folder (no {paths.config}); resume needs the run folder")
    else:
        raise ResumeError(f"{target}: no such run folder or checkpoint file")
    pid = running_pid(paths)
    if pid is not None:
        raise ResumeError(f"{paths.root}: still being trained by process {pid}; stop it first")
    _, metadata = read_checkpoint(checkpoint)
    config = config_from_toml(metadata.get("config_toml", ""), f"{checkpoint} (its saved config)", overrides)
    return ResumePlan(paths.root, checkpoint, config)
