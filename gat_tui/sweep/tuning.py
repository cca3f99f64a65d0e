"""The tuning stage's choice: the grid point with the best mean validation accuracy.

    OUT/tuning/runs/<label>/<point>/seed-<k>/   a run folder per grid point and tuning seed
    OUT/tuning/<label>.json                     the grid's validation table, the rule and the choice

The rule (Section 4.4 of the paper: "the set of hyperparameters that achieved the best
performance on the validation data"), written into every choice file:

- each tuning run's figure is its summary's `best_value`: the best validation accuracy over its
  epochs, the same figure that picks its best checkpoint: clean (the paper's rule and the
  default), or under FGM-L2 or PGD where the entry's `tune_metric` (or its preset's
  `train.select_best_by`) says so; the choice file names that figure (`metric`);
- a point's score is the mean of that figure over its `tune_seeds` seeds;
- a point with a failed run (e.g. a learning rate that diverged) cannot be chosen;
- the highest score wins; a tie (equal means) goes to the point listed first in the grid's
  file order (combinations in `itertools.product` order, the last key varying fastest);
- no choice is made until every tuning run of the entry has finished or failed: a repeat run
  never starts from a partial grid.

Only reads files (`choose`), so `gat-tui report` and every shard compute the same choice; the
runner writes the JSON (`write_choice`) when it starts the entry's repeat runs.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from gat_tui.atomic import write_text_atomically
from gat_tui.runs.status import read_summary, run_status
from gat_tui.sweep.plan import RunEntry

# how each selection figure is named in the rule (train.select_best_by's choices)
METRIC_WORDS = {
    "val_acc_clean": "clean",
    "val_acc_fgm_l2": "under FGM-L2 at eval.fgm_l2_eps",
    "val_acc_pgd": "under the validation PGD of eval.pgd_norm, pgd_eps, pgd_steps and pgd_images",
}


def rule_text(metric: str) -> str:
    """The choice rule for tuning figure `metric`, as the choice file and the report state it."""
    words = METRIC_WORDS.get(metric, metric)
    return (
        f"highest mean over the tuning seeds of best_value (each run's best validation accuracy, {words}: {metric}); "
        "points with a failed run are excluded; no choice until every tuning run has finished or failed"
    )


RULE = rule_text("val_acc_clean")
TIE_BREAK = "equal means: the grid point listed first in the file's order (last key varies fastest)"


@dataclass(frozen=True)
class PointResult:
    """One grid point's validation figures over the tuning seeds that finished."""

    point: str
    overrides: tuple[str, ...]
    values: tuple[float, ...]  # best validation accuracy of each finished tuning seed
    mean: float | None
    std: float | None
    finished: int
    failed: int
    pending: int  # not yet trained, running or stopped


@dataclass(frozen=True)
class Tuning:
    """An entry's tuning grid and, once every run is done, its choice (`chosen` is None before)."""

    label: str
    tune_seeds: int
    seeds: tuple[int, ...]  # the training seeds of the tuning runs
    points: tuple[PointResult, ...]
    chosen: str | None
    chosen_overrides: tuple[str, ...]
    rule: str = RULE
    tie_break: str = TIE_BREAK
    waiting: str = ""  # why there is no choice yet
    metric: str = "val_acc_clean"  # the validation figure compared (train.select_best_by of the tuning runs)

    def to_json(self) -> dict:
        return asdict(self)


def tuning_run_dir(root: Path, label: str, point: str, index: int) -> Path:
    return root / "tuning" / "runs" / label / point / f"seed-{index}"


def choice_file(root: Path, label: str) -> Path:
    return root / "tuning" / f"{label}.json"


def choose(root: Path, entry: RunEntry) -> Tuning:
    """The grid's table and the choice, from the tuning runs' summaries under `root`."""
    points = []
    rules: set[str] = set()  # the select_best_by the finished tuning runs record
    for grid_point in entry.tuning:
        values: list[float] = []
        failed = pending = 0
        for index in range(entry.tune_seeds):
            run_dir = tuning_run_dir(root, entry.label, grid_point.name, index)
            status = run_status(run_dir)
            summary = read_summary(run_dir) if status == "finished" else None
            value = summary.get("best_value") if summary is not None else None
            if summary is not None:  # a summary from before select_best_by was selected on clean accuracy
                rules.add(str(summary.get("select_best_by", "val_acc_clean")))
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values.append(float(value))
            elif status == "failed" or summary is not None:  # finished without a figure counts as failed
                failed += 1
            else:
                pending += 1
        mean = statistics.fmean(values) if values else None
        std = statistics.stdev(values) if len(values) > 1 else (0.0 if values else None)
        points.append(PointResult(grid_point.name, grid_point.overrides, tuple(values), mean, std, len(values), failed, pending))
    seeds = tuple(entry.tuning_seed(index) for index in range(entry.tune_seeds))
    metric = entry.tune_metric or (" and ".join(sorted(rules)) if rules else "val_acc_clean")
    pending = sum(point.pending for point in points)
    if pending:
        waiting = f"{pending} of {len(points) * entry.tune_seeds} tuning runs of {entry.label} have not finished"
        return Tuning(entry.label, entry.tune_seeds, seeds, tuple(points), None, (), rule_text(metric), waiting=waiting, metric=metric)
    candidates = [point for point in points if point.failed == 0 and point.mean is not None]
    if not candidates:
        waiting = f"every grid point of {entry.label} has a failed tuning run"
        return Tuning(entry.label, entry.tune_seeds, seeds, tuple(points), None, (), rule_text(metric), waiting=waiting, metric=metric)
    best = candidates[0]
    for point in candidates[1:]:  # strictly better only: a tie keeps the earlier point
        if point.mean is not None and best.mean is not None and point.mean > best.mean:
            best = point
    return Tuning(entry.label, entry.tune_seeds, seeds, tuple(points), best.point, best.overrides, rule_text(metric), metric=metric)


def write_choice(root: Path, tuning: Tuning) -> Path:
    path = choice_file(root, tuning.label)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(tuning.to_json(), indent=2) + "\n")
    return path
