"""Where a run folder stands, worked out in one place for `gat-tui runs`, the sweeps and resume.

- running:  a training holds the folder's lock now;
- finished, stopped, failed: what its `summary.json` says;
- stopped:  no summary but a checkpoint: the process was killed; its checkpoint can be resumed;
- new:      no summary and no checkpoint: never trained, or killed before its first
            checkpoint; it starts again from the beginning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gat_tui.runs.folder import RunPaths
from gat_tui.runs.lock import lock_holder

STATUSES = ("running", "finished", "stopped", "failed", "new")


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """The run's summary.json as a dict with a known `status`, or None if absent or unreadable."""
    try:
        summary = json.loads(RunPaths(run_dir).summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("status") not in ("finished", "stopped", "failed"):
        return None
    return summary


def run_status(run_dir: Path) -> str:
    """One of STATUSES (see the module docstring)."""
    if lock_holder(run_dir) is not None:
        return "running"
    summary = read_summary(run_dir)
    if summary is not None:
        return str(summary["status"])
    return "stopped" if RunPaths(run_dir).last_checkpoint.exists() else "new"


def finished_summary(run_dir: Path) -> dict[str, Any] | None:
    """The summary of a run that finished (its test figures), else None."""
    summary = read_summary(run_dir)
    return summary if summary is not None and summary["status"] == "finished" and lock_holder(run_dir) is None else None
