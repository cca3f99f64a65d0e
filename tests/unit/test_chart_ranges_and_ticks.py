"""Where a dashboard chart puts its y-range, its ticks and their labels, and which points it draws, by hand.

The range ignores outliers (the 2nd to 98th percentile, padded by a tenth of its span) once there are
20 points; ticks fall on 1, 2 or 5 times a power of ten (on a log axis, at those numbers themselves);
labels are as short as the step between ticks allows; down-sampling keeps each bucket's min and max.
"""

from __future__ import annotations

import math

import pytest

from gat_tui.dashboard.chart_data import clipped, downsample, log_ticks, nice_ticks, percentile, robust_range, tick_label


def test_percentiles_interpolate_between_neighbours() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    # position = fraction × (n − 1): 0.4 lies 40 % of the way from 1 to 2
    assert [percentile(values, f) for f in (0.0, 0.1, 0.25, 0.5, 1.0)] == pytest.approx([1.0, 1.4, 2.0, 3.0, 5.0])
    assert percentile([10.0, 20.0], 0.98) == pytest.approx(19.8)
    assert percentile([7.0], 0.5) == 7.0


def test_few_points_keep_every_point_padded_by_a_tenth_of_their_span() -> None:
    assert robust_range([0.0, 10.0, 5.0]) == pytest.approx((-1.0, 11.0))
    assert robust_range([0.3, 0.5]) == pytest.approx((0.28, 0.52))  # a span under 1 is no flat series
    assert robust_range([math.nan, 0.0, 10.0]) == pytest.approx((-1.0, 11.0))  # a NaN is no point
    assert robust_range([float(v) for v in range(19)]) == pytest.approx((-1.8, 19.8))  # 19 points: all kept


def test_from_twenty_points_the_range_is_the_2nd_to_98th_percentile_padded() -> None:
    # 0..19: positions 0.38 and 18.62, span 18.24, padded by 1.824 each side
    assert robust_range([float(v) for v in range(20)]) == pytest.approx((0.38 - 1.824, 18.62 + 1.824))
    # 0..100: percentiles 2 and 98, span 96, pad 9.6
    hundred = [float(v) for v in range(101)]
    assert robust_range(hundred) == pytest.approx((-7.6, 107.6))
    assert robust_range(hundred, low=0.1, high=0.9, pad=0.0) == pytest.approx((10.0, 90.0))
    # three points at min_points=3: sorted 0, 5, 10, positions 0.04 and 1.96
    assert robust_range([0.0, 10.0, 5.0], min_points=3, pad=0.0) == pytest.approx((0.2, 9.8))


def test_a_flat_series_gets_five_percent_around_its_value_and_nothing_at_all_the_unit_range() -> None:
    assert robust_range([0.3, 0.3]) == pytest.approx((0.285, 0.315))
    assert robust_range([-2.0]) == pytest.approx((-2.1, -1.9))
    assert robust_range([0.0, 0.0]) == (-0.5, 0.5)
    assert robust_range([]) == (0.0, 1.0)
    assert robust_range([math.inf, math.nan]) == (0.0, 1.0)


def test_points_outside_the_range_are_moved_onto_its_edge() -> None:
    above, below = clipped([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [5.0, -5.0, 0.0, 10.0, 6.0, -1.0], -1.0, 6.0)
    assert above == [(4.0, 6.0)]  # 6.0 and -1.0, on the edges themselves, stay where they are
    assert below == [(2.0, -1.0)]


def test_down_sampling_keeps_each_buckets_minimum_and_maximum_in_x_order() -> None:
    xs = [float(x) for x in range(10)]
    ys = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0]
    # buckets of indices 0-4 and 5-9: min 1 (the first, index 1) and max 5 (index 4); max 9 (5) and min 2 (6)
    assert downsample(xs, ys, 2) == ([1.0, 4.0, 5.0, 6.0], [1.0, 5.0, 9.0, 2.0])
    # 7 points in 3 buckets (0-1, 2-3, 4-6), flat: one point per bucket
    assert downsample([0.0, 1, 2, 3, 4, 5, 6], [1.0] * 7, 3) == ([0.0, 2.0, 4.0], [1.0, 1.0, 1.0])
    # one bucket of three points: its maximum (index 0) and minimum (index 1)
    assert downsample([0.0, 1.0, 2.0], [5.0, 1.0, 3.0], 1) == ([0.0, 1.0], [5.0, 1.0])


def test_a_short_series_or_no_buckets_draws_every_point() -> None:
    assert downsample([1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0], 2) == ([1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0])
    assert downsample([1.0, 2.0, 3.0], [3.0, 1.0, 2.0], 0) == ([1.0, 2.0, 3.0], [3.0, 1.0, 2.0])


def test_ticks_fall_on_one_two_or_five_times_a_power_of_ten() -> None:
    # (top − bottom) / count = 0.25: the nearest (in ratio) of …, 0.1, 0.2, 0.5, … is 0.2
    assert nice_ticks(0.0, 1.0, 4) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(3.0, 1217.0, 4) == [200.0, 400.0, 600.0, 800.0, 1000.0, 1200.0]  # 303.5: 200
    assert nice_ticks(-1.0, 1.0, 4) == [-1.0, -0.5, 0.0, 0.5, 1.0]  # 0.5 exactly
    assert nice_ticks(0.0, 10.0, 0) == [0.0, 10.0]  # a count of 0 is taken as 1
    assert nice_ticks(0.0, 3.0) == [0.0, 1.0, 2.0, 3.0]  # by default 4: 0.75 a tick, a step of 1 (5 would give 0.5)
    # 0.3 computed as 0.1 + 0.2 (0.30000000000000004) is still a tick, and so is 0.7
    assert nice_ticks(0.1 + 0.2, 0.7, 4) == [0.3, 0.4, 0.5, 0.6, 0.7]


def test_a_short_chart_gets_at_least_two_ticks_where_the_range_allows() -> None:
    # 0.0036 per tick: 0.005 gives only 0.005; the next smaller step, 0.002, gives four
    assert nice_ticks(0.0014, 0.0086, 2) == [0.002, 0.004, 0.006, 0.008]


def test_an_empty_or_broken_range_gets_its_bottom_only() -> None:
    assert nice_ticks(1.0, 1.0) == [1.0]
    assert nice_ticks(2.0, 1.0) == [2.0]
    assert nice_ticks(0.0, math.inf) == [0.0]
    assert math.isnan(nice_ticks(math.nan, 1.0)[0])
    assert log_ticks(1.0, 1.0) == [1.0] and log_ticks(0.0, math.inf) == [0.0]


def log_values(ticks: list[float]) -> list[float]:
    return [round(10**t, 12) for t in ticks]


def test_log_ticks_at_one_two_five_or_decades_where_those_are_too_many() -> None:
    lg = math.log10
    assert log_values(log_ticks(lg(0.15), lg(0.6), 3)) == [0.2, 0.5]
    # four of 1, 2, 5 between 0.1 and 1 for count 3 (at most count + 1): all kept
    assert log_values(log_ticks(lg(0.1), lg(1.0), 3)) == [0.1, 0.2, 0.5, 1.0]
    # 19 values from 1e-6 to 1: decades only, 7 of them, every ceil(7 / 5) = 2nd
    assert log_values(log_ticks(-6.0, 0.0, 4)) == [1e-6, 1e-4, 0.01, 1.0]
    # 10 decades from 1e-9 to 1 for count 2: every ceil(10 / 3) = 4th
    assert log_values(log_ticks(-9.0, 0.0, 2)) == [1e-9, 1e-5, 0.1]


def test_a_log_range_narrower_than_one_two_five_gets_round_values_of_its_own() -> None:
    assert log_values(log_ticks(math.log10(0.3), math.log10(0.6), 3)) == [0.3, 0.4, 0.5, 0.6]
    # 3 to 4.5 holds no 1-2-5 value: two linear ticks, 0.75 apart asked, a step of 1 (not 0.5)
    assert log_values(log_ticks(math.log10(3.0), math.log10(4.5), 2)) == [3.0, 4.0]


def test_log_ticks_ask_for_four_by_default() -> None:
    # 0.1, 0.2, 0.5, 1, 2, 5: six values, more than 4 + 1: decades only
    assert log_values(log_ticks(math.log10(0.1), math.log10(5.0))) == [0.1, 1.0]
    assert log_values(log_ticks(math.log10(0.1), math.log10(5.0), 5)) == [0.1, 0.2, 0.5, 1.0, 2.0, 5.0]


@pytest.mark.parametrize(
    ("ticks", "percent", "labels"),
    [
        ([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], False, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]),
        ([0.0, 0.25, 0.5], False, ["0.00", "0.25", "0.50"]),  # a step of 0.25 needs two decimals
        ([200.0, 400.0, 600.0], False, ["200", "400", "600"]),
        ([0.002, 0.004, 0.006], False, ["0.002", "0.004", "0.006"]),
        ([0.0001, 0.0002, 0.0003], False, ["0.0001", "0.0002", "0.0003"]),  # four decimals: still plain
        ([1e-5, 1.5e-5, 2e-5], False, ["1e-5", "1.5e-5", "2e-5"]),  # more: short scientific
        ([0.0, 1e-5, 2e-5], False, ["0", "1e-5", "2e-5"]),
        ([0.96, 0.98, 1.0], False, ["0.96", "0.98", "1.00"]),  # the step (0.02), not the ticks' size, sets the decimals
        ([1.0, 1.0, 2.0], False, ["1", "1", "2"]),  # a repeated tick is no step of 0
        ([0.2, 0.4, 0.6], True, ["20%", "40%", "60%"]),
        ([0.025, 0.05, 0.075], True, ["2.5%", "5.0%", "7.5%"]),
    ],
)
def test_tick_labels_are_as_short_as_the_step_allows(ticks: list[float], percent: bool, labels: list[str]) -> None:
    assert [tick_label(t, ticks, percent=percent) for t in ticks] == labels


@pytest.mark.parametrize(
    ("value", "label"), [(0.005, "0.005"), (2.0, "2"), (0.0, "0"), (12.5, "12.5"), (0.123, "0.123"), (0.5, "0.5")]
)
def test_a_lone_tick_keeps_its_own_digits(value: float, label: str) -> None:
    assert tick_label(value, [value]) == label


def test_a_log_ticks_label_is_the_number_itself() -> None:
    labels = [tick_label(math.log10(v), [], log=True) for v in (0.5, 0.001, 2500.0, 1e-4, 10000.0, 2.5e-5)]
    assert labels == ["0.5", "0.001", "2500", "1e-4", "1e4", "2.5e-5"]
