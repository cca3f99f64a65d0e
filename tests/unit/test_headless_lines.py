"""The headless runner's lines, character for character: the step and epoch lines, the progress bar's
figures fitted to a width, the run's summary and its clock, the timestamp at the head of a plain line.

Every expected string is written by hand from the event's numbers (rounding noted where it matters),
so a figure read from the wrong field, a digit more or less, a missing separator or a figure shown
when absent fails.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from gat_tui.console import headless
from gat_tui.console.headless import epoch_line, fit_figures, next_commands, short_figures, step_line, summary_lines
from gat_tui.events import EpochSummary, RunFinished, StepMetrics


def step(
    loss_f: float | None = None,
    loss_g: float | None = None,
    pert_l2: float | None = None,
    pert_linf: float | None = None,
    acc_clean: float | None = None,
    acc_adv: float | None = None,
    images_per_second: float = 3.4,
) -> StepMetrics:
    return StepMetrics(
        epoch=2, step=340, time=1.0, loss_f=loss_f, loss_g=loss_g, pert_l2=pert_l2, pert_linf=pert_linf,
        images_per_second=images_per_second, train_acc_clean=acc_clean, train_acc_adv=acc_adv,
    )


def test_the_step_line_shows_each_figure_with_its_digits() -> None:
    full = step(loss_f=1.5, loss_g=0.25, pert_l2=2.5, pert_linf=0.0314, images_per_second=12345.6)
    # losses with 4 decimals, the norms with 3, images per second whole with a thousands separator
    assert step_line(full) == "epoch 2 step 340  loss_f 1.5000  loss_g 0.2500  |δ|₂ 2.500 |δ|∞ 0.031  12,346 img/s"


def test_the_step_line_leaves_out_l_g_and_the_norms_when_the_method_has_none() -> None:
    assert step_line(step(loss_f=0.125)) == "epoch 2 step 340  loss_f 0.1250  3 img/s"


def test_a_missing_figure_in_the_step_line_is_a_dash() -> None:
    # an L2 norm without its L∞ one (and no L_F) prints dashes rather than failing or inventing a value
    assert step_line(step(pert_l2=1.0)) == "epoch 2 step 340  loss_f -  |δ|₂ 1.000 |δ|∞ -  3 img/s"


def summary(**changes: object) -> EpochSummary:
    fields: dict = dict(
        epoch=3, step=30, time=1.0, val_acc_clean=0.875, val_acc_adv=0.5, val_acc_fgm_l2=0.625, val_pert_l2=1.5,
        val_pert_linf=0.1, val_loss_g=0.75, is_best=True, epoch_seconds=12.34, val_acc_pgd=0.3125,
    )
    fields.update(changes)
    return EpochSummary(**fields)


def test_the_epoch_line_with_every_figure_and_the_best_mark() -> None:
    # accuracies in percent with 2 decimals, ‖δ‖₂ with 3, L_G with 4, the epoch's seconds with 1 (12.34 → 12.3)
    assert epoch_line(summary()) == (
        "epoch 3: val clean 87.50%  own-perturbation 50.00%  FGM-L2 62.50%  PGD 31.25%  |δ|₂ 1.500  L_G 0.7500"
        "  (12.3s)  [best]"
    )


def test_the_epoch_line_without_the_optional_figures_and_not_the_best() -> None:
    line = epoch_line(summary(
        val_acc_clean=0.1, val_acc_adv=None, val_acc_fgm_l2=0.0, val_pert_l2=None, val_loss_g=None, is_best=False,
        epoch_seconds=0.96, val_acc_pgd=None,
    ))
    assert line == "epoch 3: val clean 10.00%  own-perturbation -  FGM-L2 0.00%  (1.0s)"


def test_the_bars_figures_most_needed_first_each_with_its_digits() -> None:
    full = step(loss_f=1.5, loss_g=0.25, pert_l2=2.5, pert_linf=0.0314, acc_clean=0.875, acc_adv=0.5)
    # L_F and L_G with 3 decimals, ‖δ‖₂ with 2, ‖δ‖∞ with 3, the accuracies in percent with 1
    assert fit_figures(full, 200) == "L_F 1.500 adv 50.0% L_G 0.250 |d|2 2.50 |d|inf 0.031 acc 87.5%"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (step(loss_f=12.5), "L_F 12.500"),
        (step(acc_adv=0.25), "adv 25.0%"),
        (step(loss_g=0.0625), "L_G 0.062"),  # 0.0625 is exact in binary: rounds half to even
        (step(pert_l2=0.125), "|d|2 0.12"),
        (step(pert_linf=0.0078), "|d|inf 0.008"),
        (step(acc_clean=0.9), "acc 90.0%"),
        (step(), ""),
    ],
)
def test_each_figure_of_the_bar_alone(event: StepMetrics, expected: str) -> None:
    assert fit_figures(event, 200) == expected


def test_the_bars_figures_stop_at_the_width_counting_the_spaces() -> None:
    full = step(loss_f=1.5, loss_g=0.25, pert_l2=2.5, pert_linf=0.0314, acc_clean=0.875, acc_adv=0.5)
    # "L_F 1.500" (9) + " adv 50.0%" (10) + " L_G 0.250" (10) = 29 columns: fits 29, not 28
    assert fit_figures(full, 29) == "L_F 1.500 adv 50.0% L_G 0.250"
    assert fit_figures(full, 28) == "L_F 1.500 adv 50.0%"


def test_a_figure_too_wide_is_skipped_and_a_later_narrower_one_still_shown() -> None:
    # "L_F 1.500 |d|inf 0.031" would be 22 columns; "L_F 1.500 acc 87.5%" is 19
    assert fit_figures(step(loss_f=1.5, pert_linf=0.0314, acc_clean=0.875), 20) == "L_F 1.500 acc 87.5%"


def test_the_short_figures_take_at_most_30_columns() -> None:
    # "L_F 12.500 adv 100.0%" is 21 columns; with " L_G 0.250" 31, one more than the 30 allowed
    event = step(loss_f=12.5, acc_adv=1.0, loss_g=0.25)
    assert short_figures(event) == "L_F 12.500 adv 100.0%"
    assert fit_figures(event, 31) == "L_F 12.500 adv 100.0% L_G 0.250"


def finished(**changes: object) -> RunFinished:
    fields: dict = dict(
        status="stopped", epochs_done=2, step=80, wall_seconds=3725.9, best_epoch=1, best_value=0.8,
        test_acc_clean=0.8125, test_acc_adv=None, test_acc_fgm_l2=0.4375, extra={"test_acc_pgd": 0.25},
    )
    fields.update(changes)
    return RunFinished(**fields)


def test_the_summary_of_a_run_with_its_test_figures_best_epoch_and_commands() -> None:
    # 3725.9 s: whole seconds 3725 = 1 h 2 min 5 s
    assert summary_lines(finished(), "runs/a b") == [
        "run stopped: 2 epochs, 80 steps, 1:02:05",
        "test: clean 81.25%  own perturbation -  FGM-L2 43.75%  PGD 25.00%",
        "best epoch 1 (validation)",
        "run folder: runs/a b",
        "evaluate:   gat-tui eval runs/a b",
        "resume:     gat-tui resume runs/a b",
    ]


def test_the_summary_of_a_run_without_test_figures_or_best_epoch() -> None:
    lines = summary_lines(finished(status="failed", epochs_done=0, step=3, wall_seconds=59.99, best_epoch=None,
                                   test_acc_clean=None, test_acc_fgm_l2=None, extra={}), "runs/x")
    assert lines == ["run failed: 0 epochs, 3 steps, 0:59", *next_commands("runs/x")]


def test_the_test_line_without_pgd() -> None:
    assert summary_lines(finished(extra={}), "runs/x")[1] == "test: clean 81.25%  own perturbation -  FGM-L2 43.75%"


@pytest.mark.parametrize(
    ("seconds", "clock"),
    [(0.4, "0:00"), (600, "10:00"), (3570.5, "59:30"), (3600, "1:00:00"), (7170.9, "1:59:30"), (36061, "10:01:01")],
)
def test_the_summarys_clock(seconds: float, clock: str) -> None:
    assert summary_lines(finished(wall_seconds=seconds), "r")[0] == f"run stopped: 2 epochs, 80 steps, {clock}"


def test_the_plain_lines_timestamp_is_the_local_date_and_time_to_the_second(monkeypatch: pytest.MonkeyPatch) -> None:
    class Frozen(datetime):
        @classmethod
        def now(cls, tz: object = None) -> Frozen:  # type: ignore[override]
            return cls(2026, 12, 7, 9, 5, 3, 987654)

    monkeypatch.setattr(headless, "datetime", Frozen)
    assert headless.timestamp() == "2026-12-07 09:05:03"
