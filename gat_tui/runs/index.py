"""Reading run folders back: what `gat-tui runs` lists (and later the dashboard's runs screen)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from gat_tui.runs.folder import RunPaths, read_json_lines
from gat_tui.runs.status import run_status


@dataclass(frozen=True)
class RunRecord:
    """One run folder at a glance; status is running, finished, stopped or failed."""

    folder: Path
    preset: str
    method: str
    status: str
    epochs_done: int
    epochs: int | None
    best_val_acc: float | None


def read_run(folder: Path) -> RunRecord | None:
    """The record of `folder`, or None if it is not a run folder."""
    paths = RunPaths(folder)
    try:
        config = tomllib.loads(paths.config.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    epochs = [r for r in read_json_lines(paths.metrics) if r.get("event") == "epoch"]
    accuracies = [r["val_acc_clean"] for r in epochs if isinstance(r.get("val_acc_clean"), (int, float))]
    status = run_status(folder)
    if status == "new":
        status = "failed"  # it began (it has a config) but died before its first checkpoint
    train = config.get("train", {})
    return RunRecord(
        folder=folder,
        preset=str(config.get("name", folder.name)),
        method=str(config.get("method", "?")),
        status=status,
        epochs_done=max((int(r.get("epoch", 0)) for r in epochs), default=0),
        epochs=train.get("epochs") if isinstance(train.get("epochs"), int) else None,
        best_val_acc=max(accuracies) if accuracies else None,
    )


def list_runs(runs_dir: Path) -> list[RunRecord]:
    """Every run folder directly under `runs_dir`, newest first."""
    if not runs_dir.is_dir():
        return []
    records = [read_run(folder) for folder in runs_dir.iterdir() if folder.is_dir()]
    found = [record for record in records if record is not None]
    return sorted(found, key=lambda record: record.folder.stat().st_mtime, reverse=True)
