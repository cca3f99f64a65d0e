"""The tuning stage's choice rule (from summary files) and the generator watch's rule."""

from __future__ import annotations

import json
from pathlib import Path

from gat_tui.sweep.plan import RunEntry, TuningPoint
from gat_tui.sweep.tuning import choose, tuning_run_dir
from gat_tui.training.generator_watch import GeneratorWatch


def _entry() -> RunEntry:
    points = tuple(TuningPoint(f"p{index}", (f"gat.c_g={index}",)) for index in range(3))
    return RunEntry("gat", "x", (), tuning=points, tune_seeds=2)


def _summary(root: Path, point: str, seed: int, status: str, best: float | None) -> None:
    run_dir = tuning_run_dir(root, "gat", point, seed)
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps({"status": status, "best_value": best}))


def test_choice_waits_then_takes_the_best_mean_and_the_first_on_a_tie(tmp_path: Path) -> None:
    _summary(tmp_path, "p0", 0, "finished", 0.5)
    _summary(tmp_path, "p0", 1, "finished", 0.7)
    _summary(tmp_path, "p1", 0, "finished", 0.6)
    waiting = choose(tmp_path, _entry())
    assert waiting.chosen is None and "3 of 6 tuning runs of gat have not finished" in waiting.waiting
    _summary(tmp_path, "p1", 1, "finished", 0.6)  # p1 ties p0 at 0.6: p0 is listed first
    _summary(tmp_path, "p2", 0, "finished", 0.9)
    _summary(tmp_path, "p2", 1, "failed", None)  # the best value, but a failed seed rules p2 out
    tuning = choose(tmp_path, _entry())
    assert tuning.chosen == "p0" and tuning.chosen_overrides == ("gat.c_g=0",)
    assert [(p.finished, p.failed, p.pending) for p in tuning.points] == [(2, 0, 0), (2, 0, 0), (1, 1, 0)]
    assert tuning.seeds == (1_000_000, 1_000_001)


def test_watch_warns_once_after_the_idle_epochs_and_only_for_gat() -> None:
    watch = GeneratorWatch("gat", fgm_l2_eps=1.5, epochs=100)  # threshold 0.15, 3 epochs
    assert [watch.observe(value) for value in (0.01, 0.02, 0.5, 0.01, 0.01)] == [None] * 5  # 0.5 resets the count
    text = watch.observe(0.03)
    assert text is not None and "0.03" in text and "0.15" in text and "gat.lr_g" in text and "gat.c_g" in text
    assert watch.observe(0.01) is None  # once per run
    short = GeneratorWatch("dropout_gat", fgm_l2_eps=1.0, epochs=2)  # a 2-epoch run: both epochs
    assert short.observe(0.01) is None and short.observe(0.01) is not None
    assert GeneratorWatch("fg_l2", 1.0, 1).observe(0.0) is None


def test_a_one_epoch_run_s_warning_says_which_epoch() -> None:
    text = GeneratorWatch("gat", fgm_l2_eps=0.5, epochs=1).observe(0.01)
    assert text is not None and "for its first epoch, so F trains" in text  # it read "… for epoch, so F trains"


def test_a_report_cell_of_one_seed_shows_no_spread() -> None:
    from gat_tui.sweep.report import Cell

    assert Cell.of([0.9375]).text() == "93.75 (n=1)"  # it read `93.75 ± 0.00 (n=1)`
    assert Cell.of([0.5, 0.7]).text() == "60.00 ± 14.14 (n=2)"
