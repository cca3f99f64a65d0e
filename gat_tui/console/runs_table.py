"""The runs table's columns and plain-text cells, shared by `gat-tui runs` and the dashboard's runs screen."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from gat_tui.runs.index import RunRecord
from gat_tui.runs.lock import lock_holder

# what tells runs apart comes first: the run's own name (its folder's, which holds the start time), its state and
# figure; six runs of one preset read alike in a preset column, so the preset only follows the method
RUN_COLUMNS = ("run", "status", "epochs", "best val acc", "method", "preset", "folder")
RUNNING_HERE = "running (this window)"
STATUS_COLOURS = {"running": "cyan", "finished": "green", "stopped": "yellow", "failed": "red"}


def shown_status(record: RunRecord, training_here: Collection[Path] = ()) -> str:
    """The record's status, or "running" while a writer holds the folder's lock (this window's own runs say so)."""
    if record.folder in training_here:
        return RUNNING_HERE
    if lock_holder(record.folder) is not None:
        return "running"
    return record.status


def is_running(status: str) -> bool:
    return status.startswith("running")


def run_cells(record: RunRecord, status: str | None = None) -> tuple[str, str, str, str, str, str, str]:
    """One row of plain text, in RUN_COLUMNS order; `status` replaces the record's (see shown_status)."""
    epochs = f"{record.epochs_done}/{record.epochs}" if record.epochs else str(record.epochs_done)
    accuracy = "-" if record.best_val_acc is None else f"{100 * record.best_val_acc:.2f}%"
    return (record.folder.name, status or record.status, epochs, accuracy, record.method, record.preset, str(record.folder))
