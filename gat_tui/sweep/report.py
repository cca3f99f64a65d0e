"""What a sweep folder holds, aggregated: Table 2 as mean ± std beside the paper's figures, the
tuning stages' grids and choices, and the evaluation curves.

Beside the paper: for each run with a published figure, our mean minus the paper's in units of
the paper's standard deviation (z = (ours - paper) / paper std; None without a published std),
and the method ordering of both (by mean clean test accuracy, over the runs that have both).

Rendering them (tables, Markdown, charts) is `gat_tui.console.sweep_report`'s job.

Reads only files (summary.json of each run, the evaluation JSONs), so it merges whatever
shards have written so far and can run while a sweep is still going.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gat_tui.runs.figures import accuracy_problem, is_accuracy, is_norm
from gat_tui.runs.lock import lock_holder
from gat_tui.runs.status import finished_summary, read_summary
from gat_tui.sweep.plan import Sweep, load_sweep
from gat_tui.sweep.runner import SweepLayout
from gat_tui.sweep.tuning import Tuning, choose


@dataclass(frozen=True)
class Cell:
    """Mean and sample standard deviation over the seeds that finished; n of them."""

    mean: float | None
    std: float | None
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Cell:
        if not values:
            return cls(None, None, 0)
        return cls(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))

    def text(self, percent: bool = True) -> str:
        if self.mean is None:
            return "-"
        scale = 100 if percent else 1
        if self.n == 1:  # one seed has no spread to show
            return f"{scale * self.mean:.2f} (n=1)"
        return f"{scale * self.mean:.2f} ± {scale * (self.std or 0):.2f} (n={self.n})"


@dataclass(frozen=True)
class TableRow:
    label: str
    test_acc_clean: Cell
    test_acc_adv: Cell
    test_acc_fgm_l2: Cell
    paper: Cell | None
    paper_z: float | None = None  # (our mean - paper mean) / paper std, clean test accuracy
    tuned: str | None = None  # the tuning stage's chosen grid point ('waiting' while it cannot be chosen)
    selected_by: str = "-"  # the validation figure that chose the runs' checkpoints (summary's select_best_by)


@dataclass(frozen=True)
class CurvePoint:
    evaluation: str
    label: str
    attack: str
    eps: float | None
    matched_to: str | None
    accuracy: Cell
    pert_l2: Cell
    norm: str | None = None  # AutoAttack and APGD rows: their norm, images per seed and version
    n: int | None = None
    version: str | None = None

    @property
    def attack_text(self) -> str:
        """The attack as the report's tables name it: `autoattack (linf, standard, 1000 images)`."""
        details = [part for part in (self.norm, self.version, None if self.n is None else f"{self.n} images") if part]
        text = self.attack + (f" ({', '.join(details)})" if details else "")
        return text + (f" (matched to {self.matched_to})" if self.matched_to else "")


@dataclass(frozen=True)
class SweepReport:
    name: str
    seeds: int
    table: list[TableRow]
    curves: list[CurvePoint]
    skipped: list[str] = field(default_factory=list)  # a line per file that could not be read
    tuning: list[Tuning] = field(default_factory=list)
    order_ours: list[str] = field(default_factory=list)  # labels with both figures, best mean clean test accuracy first
    order_paper: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def build_report(folder: Path) -> SweepReport:
    sweep: Sweep = load_sweep(folder / "sweep.toml")
    layout = SweepLayout(folder)
    skipped: list[str] = []
    seeds_found: list[int] = []
    for seed_dir in sorted((folder / "runs").glob("*/seed-*")):
        number = seed_dir.name.removeprefix("seed-")
        if number.isdigit():
            seeds_found.append(int(number))
        else:
            skipped.append(f"{seed_dir}: not a seed folder (expected seed-<number>)")
    seed_range = range(max([sweep.seeds - 1] + seeds_found) + 1)
    table = []
    tunings: list[Tuning] = []
    for entry in sweep.runs:
        summaries = _finished_summaries([layout.run_dir(entry.label, seed) for seed in seed_range], skipped)

        def cell(key: str, summaries: list[dict] = summaries) -> Cell:
            return Cell.of([s[key] for s in summaries if is_accuracy(s.get(key))])

        published = sweep.paper.get(entry.label)
        paper = Cell(published.get("mean"), published.get("std"), int(published.get("n", 0))) if published else None
        clean = cell("test_acc_clean")
        tuned = None
        if entry.tuning:
            tuning = choose(folder, entry)
            tunings.append(tuning)
            tuned = tuning.chosen if tuning.chosen is not None else "waiting"
        table.append(
            TableRow(
                entry.label, clean, cell("test_acc_adv"), cell("test_acc_fgm_l2"), paper, _z(clean, paper), tuned,
                _selection_rules(summaries),
            )
        )

    curves = []
    for evaluation in sweep.evaluations:
        for label in evaluation.runs:
            rows_by_point: dict[tuple[str, float | None, str | None, str | None, int | None, str | None], list[dict]] = {}
            for seed in seed_range:
                path = layout.eval_file(evaluation.name, label, seed)
                if not path.exists():
                    continue
                try:
                    rows = _evaluation_rows(path)
                except ValueError as error:
                    skipped.append(f"{path}: {error}")
                    continue
                for row in rows:
                    key = (row["attack"], row["eps"], row.get("matched_to"), row.get("norm"), row.get("n"), row.get("version"))
                    rows_by_point.setdefault(key, []).append(row)
            for (attack, eps, matched_to, norm, n, version), rows in rows_by_point.items():
                curves.append(
                    CurvePoint(
                        evaluation.name, label, attack, eps, matched_to,
                        Cell.of([r["accuracy"] for r in rows]), Cell.of([r["pert_l2"] for r in rows]), norm, n, version,
                    )
                )
    # (label, our mean, the paper's mean) of the rows with both; sorted() keeps ties in the sweep file's order
    both = [
        (row.label, row.test_acc_clean.mean, row.paper.mean)
        for row in table
        if row.test_acc_clean.mean is not None and row.paper is not None and row.paper.mean is not None
    ]
    order_ours = [label for label, ours, _ in sorted(both, key=lambda point: -point[1])]
    order_paper = [label for label, _, paper in sorted(both, key=lambda point: -point[2])]
    return SweepReport(sweep.name, sweep.seeds, table, curves, skipped, tunings, order_ours, order_paper)


_TEST_FIGURES = ("test_acc_clean", "test_acc_adv", "test_acc_fgm_l2")


def _finished_summaries(run_dirs: list[Path], skipped: list[str]) -> list[dict[str, Any]]:
    """The summaries of the runs that finished; a warning in `skipped` for a summary that cannot be
    read and for each figure in one that is not an accuracy (that figure is left out)."""
    summaries = []
    for run_dir in run_dirs:
        summary = finished_summary(run_dir)
        path = run_dir / "summary.json"
        if summary is None:
            if path.is_file() and read_summary(run_dir) is None and lock_holder(run_dir) is None:
                skipped.append(f"{path}: not a readable run summary (JSON with a status); its run is left out")
            continue
        for key in _TEST_FIGURES:
            problem = accuracy_problem(key, summary.get(key))
            if problem is not None:
                skipped.append(f"{path}: {problem}")
        summaries.append(summary)
    return summaries


def _selection_rules(summaries: list[dict[str, Any]]) -> str:
    """The figure(s) that chose these runs' best checkpoints; a summary written before the choice
    existed was chosen on clean accuracy; '-' without a finished run."""
    rules = sorted({str(summary.get("select_best_by", "val_acc_clean")) for summary in summaries})
    return ", ".join(rules) if rules else "-"


def _z(ours: Cell, paper: Cell | None) -> float | None:
    """Our mean minus the paper's in units of the paper's std; None where a figure or the std is missing."""
    if ours.mean is None or paper is None or paper.mean is None or not paper.std:
        return None
    return (ours.mean - paper.mean) / paper.std


def _evaluation_rows(path: Path) -> list[dict[str, Any]]:
    """The result rows of one evaluation JSON, checked; ValueError says what is wrong."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot be read ({error})") from None
    rows = record.get("results") if isinstance(record, dict) else None
    if not isinstance(rows, list):
        raise ValueError("has no list of 'results'")
    for index, row in enumerate(rows):
        fits = (
            isinstance(row, dict)
            and isinstance(row.get("attack"), str)
            and (row.get("eps") is None or is_norm(row.get("eps")))
            and is_accuracy(row.get("accuracy"))
            and is_norm(row.get("pert_l2"))
            and (row.get("matched_to") is None or isinstance(row.get("matched_to"), str))
            and all(row.get(key) is None or isinstance(row.get(key), str) for key in ("norm", "version"))
            and (row.get("n") is None or (isinstance(row.get("n"), int) and not isinstance(row.get("n"), bool)))
        )
        if not fits:
            raise ValueError(
                f"results[{index}] = {row!r} is not an evaluation row (attack, eps >= 0, accuracy in [0, 1], pert_l2 >= 0)"
            )
    return rows
