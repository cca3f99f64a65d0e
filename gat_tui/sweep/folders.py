"""Finding sweeps in a runs folder and the run folders of each (for the runs screen's groups).

A sweep's output folder holds `sweep.toml` and `runs/<label>/seed-<k>/` (see runner.py); by
default it is `<runs dir>/sweeps/<sweep name>`, and `--out` may put it directly in the runs folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gat_tui.runs.index import RunRecord, read_runs

_SEED = re.compile(r"^seed-(\d+)$")


@dataclass(frozen=True)
class SweepRuns:
    """A sweep's folder and its readable runs, by label then seed number; `skipped` names the unreadable ones."""

    folder: Path
    records: list[RunRecord]
    skipped: list[str]

    @property
    def name(self) -> str:
        return self.folder.name

    def label(self, record: RunRecord) -> str:
        """`<label>/seed-<k>`: the run's place in the sweep."""
        return f"{record.folder.parent.name}/{record.folder.name}"


def is_sweep_folder(folder: Path) -> bool:
    return (folder / "sweep.toml").is_file()


def sweep_folders(runs_dir: Path) -> list[Path]:
    """The sweep folders directly in `runs_dir` or in `runs_dir/sweeps`, by name."""
    found: list[Path] = []
    for parent in (runs_dir, runs_dir / "sweeps"):
        try:
            children = list(parent.iterdir())
        except OSError:
            continue
        found.extend(child for child in children if child.is_dir() and is_sweep_folder(child))
    return sorted(found, key=lambda folder: (folder.name, str(folder)))


def sweep_runs(folder: Path) -> SweepRuns:
    """The run folders `runs/<label>/seed-<k>` of the sweep in `folder` (seed 10 after seed 2)."""
    places = []
    for seed_dir in (folder / "runs").glob("*/seed-*"):
        match = _SEED.match(seed_dir.name)
        if match and seed_dir.is_dir():
            places.append((seed_dir.parent.name, int(match.group(1)), seed_dir))
    scan = read_runs(seed_dir for _, _, seed_dir in sorted(places))
    return SweepRuns(folder, scan.records, scan.skipped)
