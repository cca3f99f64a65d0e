"""Reading run folders back: what `gat-tui runs` lists (and later the dashboard's runs screen)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
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


class UnreadableRun(ValueError):
    """A run folder whose files cannot be read; the message names the file and the fault."""


def read_run(folder: Path) -> RunRecord | None:
    """The record of `folder`, None if it is not a run folder, UnreadableRun if it is a broken one."""
    paths = RunPaths(folder)
    try:
        config = tomllib.loads(paths.config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UnreadableRun(f"{paths.config}: cannot be read ({error})") from None
    summary = metrics_summary(paths.metrics)
    status = run_status(folder)
    if status == "new":
        status = "failed"  # it began (it has a config) but died before its first checkpoint
    train = config.get("train", {})
    epochs_planned = train.get("epochs") if isinstance(train, dict) else None
    return RunRecord(
        folder=folder,
        preset=str(config.get("name", folder.name)),
        method=str(config.get("method", "?")),
        status=status,
        epochs_done=summary.epochs_done,
        epochs=epochs_planned if _is_int(epochs_planned) else None,
        best_val_acc=summary.best_val_acc,
    )


@dataclass(frozen=True)
class MetricsSummary:
    """What a run's metrics.jsonl tells at a glance: the run record's epochs and best accuracy, and the
    runs screen's duration (the largest `time` of any line, None when no line has one)."""

    epochs_done: int
    best_val_acc: float | None
    training_seconds: float | None


# The runs screen re-reads every folder every two seconds, and a sweep's metrics files can hold
# thousands of lines each: a file is parsed again only when its size or modification time moved,
# and its one summary serves both the run record and the screen's detail columns.
_summaries: dict[Path, tuple[tuple[int, int], MetricsSummary]] = {}


def metrics_summary(metrics: Path) -> MetricsSummary:
    """The summary of a metrics.jsonl (a missing file has none of its figures), cached until the file
    changes; UnreadableRun if it is not UTF-8 text."""
    try:
        stat = metrics.stat()
        key = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = None
    cached = _summaries.get(metrics)
    if key is not None and cached is not None and cached[0] == key:
        return cached[1]
    try:
        records = read_json_lines(metrics)
    except UnicodeDecodeError as error:
        raise UnreadableRun(f"{metrics}: not UTF-8 text ({error})") from None
    # lines of the wrong shape (not an object, a non-integer epoch) are passed over
    lines = [r for r in records if isinstance(r, dict)]
    epochs = [r for r in lines if r.get("event") == "epoch" and _is_int(r.get("epoch"))]
    accuracies = [r["val_acc_clean"] for r in epochs if _is_number(r.get("val_acc_clean"))]
    times = [r["time"] for r in lines if _is_number(r.get("time"))]
    summary = MetricsSummary(
        epochs_done=max((int(r["epoch"]) for r in epochs), default=0),
        best_val_acc=max(accuracies) if accuracies else None,
        training_seconds=max(times) if times else None,
    )
    if key is not None:
        _summaries[metrics] = (key, summary)
    return summary


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class RunScan:
    """The runs of a folder, newest first, and a line per folder that could not be read."""

    records: list[RunRecord]
    skipped: list[str]


def read_runs(folders: Iterable[Path]) -> RunScan:
    """The records of `folders` in their order; one that is not a run is passed over, a broken one
    skipped with the reason."""
    found, skipped = [], []
    for folder in folders:
        try:
            record = read_run(folder)
        except UnreadableRun as error:
            skipped.append(str(error))
            continue
        if record is not None:
            found.append(record)
    return RunScan(found, skipped)


def scan_runs(runs_dir: Path) -> RunScan:
    """Every run folder directly under `runs_dir`, newest first; a broken one is skipped with the reason."""
    if not runs_dir.is_dir():
        return RunScan([], [])
    scan = read_runs(folder for folder in sorted(runs_dir.iterdir()) if folder.is_dir())
    return RunScan(sorted(scan.records, key=lambda record: record.folder.stat().st_mtime, reverse=True), scan.skipped)


def list_runs(runs_dir: Path) -> list[RunRecord]:
    """Every readable run folder directly under `runs_dir`, newest first."""
    return scan_runs(runs_dir).records
