"""What the dashboard's charts plot on each x-axis (step, epoch, time), and the readout's `@ x`, by hand.

Five metrics.jsonl lines: three training steps and two epoch summaries, at steps, epochs and
times that all differ, so a point put on the wrong axis (or a figure read from the wrong field)
lands elsewhere than written below.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gat_tui.dashboard.chart_data import readout
from gat_tui.dashboard.series import RunSeries

LINES = [
    {"event": "step", "epoch": 1, "step": 10, "time": 5.0, "loss_f": 1.0},
    {"event": "step", "epoch": 1, "step": 20, "time": 9.0, "loss_f": 3.0},
    {"event": "epoch", "epoch": 1, "step": 20, "time": 9.5, "val_acc_clean": 0.5},
    {"event": "step", "epoch": 2, "step": 30, "time": 14.0, "loss_f": 0.5},
    {"event": "epoch", "epoch": 2, "step": 40, "time": 20.0, "val_acc_clean": 0.75},
]


@pytest.fixture
def series(tmp_path: Path) -> RunSeries:
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in LINES) + "\n")
    return RunSeries.from_metrics_file(path)


def test_a_step_figure_on_each_axis(series: RunSeries) -> None:
    assert series.points("loss_f", "step") == ([10.0, 20.0, 30.0], [1.0, 3.0, 0.5])
    assert series.points("loss_f", "time") == ([5.0, 9.0, 14.0], [1.0, 3.0, 0.5])
    # on the epoch axis a step figure is the mean of its epoch's steps: (1 + 3) / 2, then 0.5
    assert series.points("loss_f", "epoch") == ([1.0, 2.0], [2.0, 0.5])


def test_an_epoch_figure_on_each_axis(series: RunSeries) -> None:
    assert series.points("val_acc_clean", "step") == ([20.0, 40.0], [0.5, 0.75])
    assert series.points("val_acc_clean", "time") == ([9.5, 20.0], [0.5, 0.75])
    assert series.points("val_acc_clean", "epoch") == ([1.0, 2.0], [0.5, 0.75])


def test_smoothing_applies_to_step_figures_only(series: RunSeries) -> None:
    # debiased EMA with factor 0.5: 0.5/0.5 = 1; (0.25 + 1.5)/0.75 = 2.333; (0.875 + 0.25)/0.875 = 1.2857
    xs, ys = series.points("loss_f", "step", smoothing=0.5)
    assert xs == [10.0, 20.0, 30.0] and ys == pytest.approx([1.0, 1.75 / 0.75, 1.125 / 0.875])
    assert series.points("val_acc_clean", "step", smoothing=0.5) == ([20.0, 40.0], [0.5, 0.75])


def test_the_readout_names_where_the_best_was_on_the_chosen_axis(series: RunSeries) -> None:
    # loss: lower is better, the minimum 0.5 at step 30 = epoch 2 = 0:14; accuracy: the maximum 0.75 at step 40 = 0:20
    expected = {"step": ("30", "40"), "epoch": ("2", "2"), "time": ("0:14", "0:20")}
    for axis, (loss_at, accuracy_at) in expected.items():
        loss = readout("loss_f", *series.points("loss_f", axis))
        accuracy = readout("val_acc_clean", *series.points("val_acc_clean", axis))
        assert loss is not None and accuracy is not None
        assert loss.text("loss_f", "L_F", axis) == f"L_F 0.5 min 0.5 @ {loss_at}"
        assert accuracy.text("val_acc_clean", "val", axis) == f"val 75.0% max 75.0% @ {accuracy_at}"


def test_a_tie_for_the_best_keeps_the_first_x() -> None:
    accuracy = readout("val_acc_clean", [1.0, 2.0, 3.0], [0.5, 0.75, 0.75])
    loss = readout("loss_f", [10.0, 20.0, 30.0], [0.5, 0.5, 1.0])
    assert accuracy is not None and (accuracy.best, accuracy.best_x, accuracy.last) == (0.75, 2.0, 0.75)
    assert loss is not None and (loss.best, loss.best_x, loss.last) == (0.5, 10.0, 1.0)


def test_live_events_make_the_same_points_and_a_resumed_run_s_history_goes_first(series: RunSeries) -> None:
    """The dashboard's live path (engine events) against the file path above, point by point."""
    from gat_tui.events import EpochSummary, StepMetrics

    live = RunSeries()
    assert not live.has("loss_f")
    live.add_step(StepMetrics(epoch=3, step=50, time=25.0, loss_f=0.25, loss_g=None, pert_l2=0.5, pert_linf=None, images_per_second=9.0))
    live.add_epoch(EpochSummary(epoch=3, step=60, time=30.0, val_acc_clean=0.875, val_acc_adv=None, val_acc_fgm_l2=0.5,
                                val_pert_l2=None, val_pert_linf=None, val_loss_g=None, is_best=True, epoch_seconds=10.0))
    assert live.has("loss_f") and live.has("pert_l2") and not live.has("loss_g") and not live.has("val_acc_adv")
    assert live.points("pert_l2", "time") == ([25.0], [0.5])
    assert live.points("val_acc_fgm_l2", "epoch") == ([3.0], [0.5])
    assert live.points("val_acc_fgm_l2", "step") == ([60.0], [0.5])
    live.prepend(series)  # the run's history from metrics.jsonl first, then what it trains now
    assert live.points("loss_f", "step") == ([10.0, 20.0, 30.0, 50.0], [1.0, 3.0, 0.5, 0.25])
    assert live.points("val_acc_clean", "time") == ([9.5, 20.0, 30.0], [0.5, 0.75, 0.875])
    later = RunSeries()
    later.add_step(StepMetrics(epoch=4, step=70, time=35.0, loss_f=0.125, loss_g=None, pert_l2=None, pert_linf=None, images_per_second=9.0))
    later.add_step(StepMetrics(epoch=4, step=80, time=40.0, loss_f=None, loss_g=None, pert_l2=None, pert_linf=None,
                               images_per_second=9.0, train_acc_clean=0.75))  # a figure the run had not shown before
    live.extend(later)
    assert live.points("loss_f", "epoch") == ([1.0, 2.0, 3.0, 4.0], [2.0, 0.5, 0.25, 0.125])
    assert live.points("train_acc_clean", "step") == ([80.0], [0.75])
    fresh = RunSeries()
    fresh.prepend(series)  # nothing of its own yet
    assert fresh.points("loss_f", "step") == ([10.0, 20.0, 30.0], [1.0, 3.0, 0.5])


def test_a_resumed_run_s_history_stops_at_its_checkpoint_and_odd_lines_are_passed_over(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    odd = [{"event": "step", "epoch": "one", "step": 5, "loss_f": 9.0}, {"event": "step", "epoch": 1, "step": 6.5, "loss_f": 9.0},
           {"event": "other", "epoch": 1, "step": 7, "loss_f": 9.0, "val_acc_clean": 0.1},  # neither a step nor an epoch line
           {"event": "step", "loss_f": 7.0}, {"event": "epoch", "epoch": 1, "step": 8, "time": "late", "val_acc_fgm_l2": 0.25}]
    path.write_text("\n".join(json.dumps(line) for line in [*odd, *LINES]) + "\n[]\n")
    history = RunSeries.from_metrics_file(path, up_to_step=20)  # the checkpoint's step: lines after it are the killed run's
    assert history.points("loss_f", "step") == ([0.0, 10.0, 20.0], [7.0, 1.0, 3.0])
    assert history.points("loss_f", "time") == ([0.0, 5.0, 9.0], [7.0, 1.0, 3.0])
    assert history.points("loss_f", "epoch") == ([0.0, 1.0], [7.0, 2.0])
    assert history.points("val_acc_clean", "step") == ([20.0], [0.5])
    assert history.points("val_acc_fgm_l2", "time") == ([0.0], [0.25])  # a time that is not a number: 0
    assert history.points("loss_g", "step") == ([], [])  # never recorded
    (tmp_path / "latin1.jsonl").write_bytes(b'{"event": "step", "epoch": 1, "step": 1, "loss_f": 1.0, "x": "\xe9"}\n')
    assert RunSeries.from_metrics_file(tmp_path / "latin1.jsonl").points_by_name == {}


def test_smoothing_passes_over_non_finite_values_and_a_factor_of_zero_keeps_them() -> None:
    from gat_tui.dashboard.series import smooth

    assert smooth([1.0, 3.0], 0.0) == [1.0, 3.0] and smooth([], 0.5) == []
    smoothed = smooth([1.0, float("nan"), 3.0], 0.5)
    # the NaN is shown as itself and left out of the average: 1, then (0.25 + 1.5) / 0.75
    assert smoothed[0] == 1.0 and math.isnan(smoothed[1]) and smoothed[2] == pytest.approx(1.75 / 0.75)
