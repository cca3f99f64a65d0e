"""The numbers a dashboard chart prints beside its curves: values, x positions, readouts (last and best), by hand.

`format_value` / `format_x` / `clock` make the full readout (`L_F 0.62 min 0.25 @ 1200`),
`compact_value` / `compact_x` the short forms a narrow legend falls back to (`L_F .62 ↓.25@1.2k`).
"""

from __future__ import annotations

import math

import pytest

from gat_tui.dashboard.chart_data import (
    clock,
    compact_value,
    compact_x,
    format_value,
    format_x,
    higher_is_better,
    is_fraction,
    readout,
)


def test_accuracies_are_fractions_best_at_their_maximum_and_the_rest_at_their_minimum() -> None:
    assert [higher_is_better(name) for name in ("val_acc_clean", "train_acc_adv", "loss_f", "pert_l2")] == [
        True, True, False, False
    ]
    assert [is_fraction(name) for name in ("val_acc_pgd", "val_pert_linf", "loss_g")] == [True, False, False]


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("val_acc_clean", 0.875, "87.5%"),
        ("loss_f", 0.6234, "0.623"),  # three significant digits
        ("loss_f", 0.0, "0"),
        ("loss_f", 10000.0, "1.00e+04"),  # from 10⁴ on: scientific
        ("loss_f", 9990.0, "9.99e+03"),
        ("loss_f", -20000.0, "-2.00e+04"),
        ("loss_f", 0.001, "0.001"),  # down to 10⁻³: plain
        ("pert_linf", 0.000999, "9.99e-04"),
        ("loss_g", -0.0005, "-5.00e-04"),
        ("loss_f", math.nan, "nan"),
        ("val_acc_clean", math.inf, "inf"),
    ],
)
def test_a_value_in_the_full_readout(name: str, value: float, text: str) -> None:
    assert format_value(name, value) == text


def test_x_positions_and_times() -> None:
    assert [format_x(1200.0, "step"), format_x(3.0, "epoch"), format_x(2.5, "epoch"), format_x(0.125, "step")] == [
        "1200", "3", "2.5", "0.125"
    ]
    assert format_x(75.9, "time") == "1:15"  # whole seconds, minutes:seconds
    # an hour on: hours:minutes:seconds; minutes and seconds from 0 to 59
    assert [clock(s) for s in (0, 59.9, 600, 3570, 3600, 7170, 36061)] == [
        "0:00", "0:59", "10:00", "59:30", "1:00:00", "1:59:30", "10:01:01"
    ]


@pytest.mark.parametrize(
    ("name", "value", "whole", "text"),
    [
        ("loss_g", 0.625, False, ".625"),  # no leading zero
        ("loss_g", -0.5, False, "-.5"),
        ("loss_g", 1.5, False, "1.5"),
        ("loss_g", -1.5, False, "-1.5"),
        ("loss_g", 12.34, False, "12.3"),
        ("loss_g", 0.0, False, "0"),
        ("loss_g", 0.001, False, ".001"),
        ("loss_g", 0.000999, False, "1.0e-3"),  # below 10⁻³: one decimal, a bare exponent
        ("loss_g", 2e-5, False, "2.0e-5"),
        ("loss_g", 10000.0, False, "1.0e4"),
        ("loss_g", -12345.0, False, "-1.2e4"),
        ("val_acc_clean", 0.8751, False, "87.5"),  # percent without the sign
        ("val_acc_clean", 0.8751, True, "88"),
        ("val_acc_clean", 0.125, True, "12"),  # 12.5 is exact: rounds half to even
        ("loss_g", math.inf, False, "inf"),
    ],
)
def test_a_value_in_the_compact_readout(name: str, value: float, whole: bool, text: str) -> None:
    assert compact_value(name, value, whole) == text


def test_a_compact_accuracy_keeps_its_decimal_unless_whole_percent_is_asked() -> None:
    assert compact_value("val_acc_clean", 0.8751) == "87.5"


def test_a_compact_step_counts_thousands_and_millions() -> None:
    assert [compact_x(x, "step") for x in (950, 999, 1000, 1500, -1500, 12_000, 125_400, 1_000_000, 3_400_000)] == [
        "950", "999", "1k", "1.5k", "-1.5k", "12k", "125k", "1M", "3.4M"
    ]
    # epochs and times are never abbreviated
    assert (compact_x(1500, "epoch"), compact_x(1500, "time")) == ("1500", "25:00")


def test_the_readout_is_the_last_value_and_the_best_with_where_it_was() -> None:
    loss = readout("loss_f", [100, 1200, 2400], [0.9, 0.25, 0.62])
    assert loss is not None and (loss.last, loss.best, loss.best_x, loss.best_is_max) == (0.62, 0.25, 1200, False)
    assert loss.text("loss_f", "L_F", "step") == "L_F 0.62 min 0.25 @ 1200"
    assert loss.compact("loss_f", "L_F", "step") == "L_F .62 ↓.25@1.2k"
    assert loss.compact("loss_f", "L_F", "step", where=False) == "L_F .62 ↓.25"
    accuracy = readout("val_acc_fgm_l2", [1, 2, 3], [0.5, 0.881, 0.875])
    assert accuracy is not None and accuracy.best_is_max
    assert accuracy.forms("val_acc_fgm_l2", "val FGM-L2", "FGM", "epoch") == (
        "val FGM-L2 87.5% max 88.1% @ 2", "FGM 87.5 ↑88.1@2", "FGM 87.5 ↑88.1", "FGM 88 ↑88", "FGM 88"
    )
    assert accuracy.forms("val_acc_fgm_l2", "val FGM-L2", "FGM", "time")[0] == "val FGM-L2 87.5% max 88.1% @ 0:02"
    # on the step axis the compact form counts thousands: best at step 1200 reads @1.2k
    assert loss.forms("loss_f", "L_F", "L_F", "step") == (
        "L_F 0.62 min 0.25 @ 1200", "L_F .62 ↓.25@1.2k", "L_F .62 ↓.25", "L_F .62 ↓.25", "L_F .62"
    )


def test_the_readout_skips_values_that_are_not_finite_and_keeps_the_first_best() -> None:
    found = readout("loss_f", [1, 2, 3, 4, 5], [0.5, math.nan, 0.25, 0.25, math.inf])
    assert found is not None and (found.last, found.best, found.best_x) == (0.25, 0.25, 3)
    accuracy = readout("val_acc_clean", [1, 2, 3], [0.75, 0.5, 0.75])
    assert accuracy is not None and (accuracy.last, accuracy.best, accuracy.best_x) == (0.75, 0.75, 1)
    assert readout("loss_f", [1, 2], [math.nan, math.nan]) is None
    assert readout("loss_f", [], []) is None
