"""The tuning stage's table and choice as `gat-tui report` and the choice file show them.

Each tuning run is a summary.json written by the test; the figures of each grid point (its
values, mean, sample std, counts of finished/failed/pending runs) and the choice are computed
by hand in the comments.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from gat_tui.sweep.plan import RunEntry, TuningPoint
from gat_tui.sweep.tuning import RULE, choice_file, choose, rule_text, tuning_run_dir, write_choice

POINTS = (TuningPoint("lo", ("gat.lr_g=0.1",)), TuningPoint("hi", ("gat.lr_g=0.2",)))


def entry(*, tune_seeds: int = 2, seed_offset: int = 0, tune_metric: str | None = None) -> RunEntry:
    return RunEntry("gat", "p", (), seed_offset=seed_offset, tuning=POINTS, tune_seeds=tune_seeds, tune_metric=tune_metric)


def summary(root: Path, point: str, index: int, **fields: object) -> Path:
    run_dir = tuning_run_dir(root, "gat", point, index)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps({"status": "finished", **fields}))
    return run_dir


def test_where_tuning_runs_and_the_choice_live(tmp_path: Path) -> None:
    assert tuning_run_dir(tmp_path, "gat", "lo", 2) == tmp_path / "tuning" / "runs" / "gat" / "lo" / "seed-2"
    assert choice_file(tmp_path, "gat") == tmp_path / "tuning" / "gat.json"


def test_the_rule_names_the_figure_compared() -> None:
    assert RULE == rule_text("val_acc_clean") == (
        "highest mean over the tuning seeds of best_value (each run's best validation accuracy, clean: val_acc_clean); "
        "points with a failed run are excluded; no choice until every tuning run has finished or failed"
    )
    assert "(each run's best validation accuracy, under FGM-L2 at eval.fgm_l2_eps: val_acc_fgm_l2)" in rule_text("val_acc_fgm_l2")
    assert "(each run's best validation accuracy, other: other)" in rule_text("other")  # a figure without words: its name


def test_each_points_figures_and_the_higher_mean_wins(tmp_path: Path) -> None:
    summary(tmp_path, "lo", 0, best_value=0.5)
    summary(tmp_path, "lo", 1, best_value=0.7)  # lo: mean 0.6, std sqrt(((-0.1)^2 + 0.1^2) / 1) = 0.1414
    summary(tmp_path, "hi", 0, best_value=1)  # a whole number is a figure too
    summary(tmp_path, "hi", 1, best_value=0.5)  # hi: mean 0.75 > 0.6, std sqrt(0.125) = 0.3536
    tuning = choose(tmp_path, entry())
    lo, hi = tuning.points
    assert (lo.point, lo.overrides, lo.values, lo.finished, lo.failed, lo.pending) == ("lo", ("gat.lr_g=0.1",), (0.5, 0.7), 2, 0, 0)
    assert math.isclose(lo.mean or 0, 0.6) and math.isclose(lo.std or 0, math.sqrt(0.02))
    assert (hi.values, hi.finished) == ((1.0, 0.5), 2) and math.isclose(hi.mean or 0, 0.75) and math.isclose(hi.std or 0, math.sqrt(0.125))
    assert (tuning.chosen, tuning.chosen_overrides, tuning.waiting) == ("hi", ("gat.lr_g=0.2",), "")
    assert (tuning.label, tuning.tune_seeds, tuning.seeds, tuning.metric, tuning.rule) == ("gat", 2, (1_000_000, 1_000_001), "val_acc_clean", RULE)


def test_one_seed_has_a_std_of_zero_and_the_offset_moves_the_seeds(tmp_path: Path) -> None:
    summary(tmp_path, "lo", 0, best_value=0.25)
    summary(tmp_path, "hi", 0, best_value=0.25)  # a tie: the point listed first
    tuning = choose(tmp_path, entry(tune_seeds=1, seed_offset=4))
    assert [(point.mean, point.std) for point in tuning.points] == [(0.25, 0.0), (0.25, 0.0)]
    assert (tuning.chosen, tuning.seeds) == ("lo", (1_000_004,))


def test_runs_not_finished_are_pending_and_no_choice_is_made(tmp_path: Path) -> None:
    summary(tmp_path, "lo", 0, best_value=0.9)
    (tuning_run_dir(tmp_path, "gat", "lo", 1) / "summary.json").parent.mkdir(parents=True)
    (tuning_run_dir(tmp_path, "gat", "lo", 1) / "summary.json").write_text(json.dumps({"status": "stopped", "best_value": 0.99}))
    summary(tmp_path, "hi", 1, status="failed", best_value=0.95)
    tuning = choose(tmp_path, entry())
    # lo: one finished, one stopped (pending); hi: seed 0 never started (pending), seed 1 failed
    assert [(p.values, p.mean, p.std, p.finished, p.failed, p.pending) for p in tuning.points] == [
        ((0.9,), 0.9, 0.0, 1, 0, 1), ((), None, None, 0, 1, 1),
    ]
    assert (tuning.chosen, tuning.chosen_overrides) == (None, ())
    assert tuning.waiting == "2 of 4 tuning runs of gat have not finished"
    assert tuning.rule == RULE and tuning.metric == "val_acc_clean"


def test_a_finished_run_without_a_figure_fails_its_point(tmp_path: Path) -> None:
    summary(tmp_path, "lo", 0, best_value=0.9)
    summary(tmp_path, "lo", 1)  # finished but no best_value
    summary(tmp_path, "hi", 0, best_value=0.2)
    summary(tmp_path, "hi", 1, best_value=True)  # a boolean is not a figure
    tuning = choose(tmp_path, entry())
    assert [(p.values, p.finished, p.failed, p.pending) for p in tuning.points] == [((0.9,), 1, 1, 0), ((0.2,), 1, 1, 0)]
    assert (tuning.chosen, tuning.waiting) == (None, "every grid point of gat has a failed tuning run")


def test_a_point_with_a_failed_run_cannot_win_even_with_the_best_mean(tmp_path: Path) -> None:
    summary(tmp_path, "lo", 0, best_value=0.9)
    summary(tmp_path, "lo", 1, status="failed")
    summary(tmp_path, "hi", 0, best_value=0.1)
    summary(tmp_path, "hi", 1, best_value=0.2)
    assert choose(tmp_path, entry()).chosen == "hi"


def test_the_figure_compared_is_the_entrys_else_the_one_the_runs_selected_by(tmp_path: Path) -> None:
    summary(tmp_path, "lo", 0, best_value=0.5, select_best_by="val_acc_pgd")
    summary(tmp_path, "lo", 1, best_value=0.5, select_best_by="val_acc_pgd")
    summary(tmp_path, "hi", 0, best_value=0.5, select_best_by="val_acc_fgm_l2")
    summary(tmp_path, "hi", 1, best_value=0.5)  # written before select_best_by was recorded: clean
    tuning = choose(tmp_path, entry())
    assert tuning.metric == "val_acc_clean and val_acc_fgm_l2 and val_acc_pgd"  # mixed rules are said, sorted
    assert tuning.rule == rule_text("val_acc_clean and val_acc_fgm_l2 and val_acc_pgd")
    chosen = choose(tmp_path, entry(tune_metric="val_acc_pgd"))
    assert (chosen.metric, chosen.rule) == ("val_acc_pgd", rule_text("val_acc_pgd"))
    waiting = choose(tmp_path / "empty", entry(tune_metric="val_acc_fgm_l2"))
    assert (waiting.metric, waiting.rule) == ("val_acc_fgm_l2", rule_text("val_acc_fgm_l2"))
    nothing_yet = choose(tmp_path / "empty", entry())  # no figure asked, none recorded yet: the default's
    assert (nothing_yet.metric, nothing_yet.rule) == ("val_acc_clean", RULE)
    failed = tmp_path / "failed"
    for point in ("lo", "hi"):
        summary(failed, point, 0, status="failed")
        summary(failed, point, 1, best_value=0.5, select_best_by="val_acc_pgd")
    assert [(t.metric, t.rule) for t in (choose(failed, entry()),)] == [("val_acc_pgd", rule_text("val_acc_pgd"))]


def test_the_choice_file_holds_the_table_the_rule_and_the_choice(tmp_path: Path) -> None:
    summary(tmp_path, "lo", 0, best_value=0.5)
    summary(tmp_path, "lo", 1, best_value=0.5)
    summary(tmp_path, "hi", 0, best_value=0.75)
    summary(tmp_path, "hi", 1, best_value=0.25)  # hi: mean 0.5 ties lo, which is listed first
    out = tmp_path / "out"  # the choice file's folder does not exist yet
    path = write_choice(out, choose(tmp_path, entry()))
    assert path == out / "tuning" / "gat.json" and path.read_text().endswith("}\n")
    assert path.read_text().startswith('{\n  "label": "gat",\n  "tune_seeds": 2,\n')  # indented two spaces, for reading
    assert write_choice(out, choose(tmp_path, entry())) == path  # every repeat run writes it again
    record = json.loads(path.read_text())
    assert record["chosen"] == "lo" and record["chosen_overrides"] == ["gat.lr_g=0.1"]
    assert [point["values"] for point in record["points"]] == [[0.5, 0.5], [0.75, 0.25]]
    assert record["tie_break"] == "equal means: the grid point listed first in the file's order (last key varies fastest)"
    assert (record["rule"], record["metric"], record["seeds"], record["waiting"]) == (RULE, "val_acc_clean", [1_000_000, 1_000_001], "")
