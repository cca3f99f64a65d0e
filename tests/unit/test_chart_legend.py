"""How a chart's legend is packed into the rows of its width, and which readout form it settles on, by hand.

Entries are runs of one letter here, so every row's width is a sum of lengths and gaps: a head of
10 columns (`H` × 10) or 4, and each entry's forms of 20, 12, 8, 7 and 3 columns, longest first
(the last one the last value only).
"""

from __future__ import annotations

from gat_tui.dashboard.chart_data import legend_rows, pack_rows

HEADS = ["H" * 10, "H" * 4]
FORMS = ("a" * 20, "b" * 12, "c" * 8, "d" * 7, "e" * 3)


def test_entries_flow_into_rows_two_columns_apart() -> None:
    # head 4; + 2 + 4 = 10; "bb" would make 14 > 12: a new row, 2; + 2 + 6 = 10
    assert pack_rows("head", ["aaaa", "bb", "cccccc"], 12) == [[-1, 0], [1, 2]]
    assert pack_rows("ab", ["cdefgh"], 10) == [[-1, 0]]  # exactly the width fits
    assert pack_rows("ab", ["cdefgh"], 9) == [[-1], [0]]
    assert pack_rows("ab", ["cdefgh"], 9, gap=1) == [[-1, 0]]


def test_without_a_head_the_first_entry_takes_no_gap() -> None:
    assert pack_rows("", ["abc", "de"], 7) == [[-1, 0, 1]]  # 3 + 2 + 2
    assert pack_rows("", ["abc", "de"], 6) == [[-1, 0], [1]]
    assert pack_rows("", ["abc", "de"], 6, gap=1) == [[-1, 0, 1]]


def test_a_wide_chart_shows_the_full_head_and_the_longest_form_on_one_row() -> None:
    assert legend_rows(HEADS, [FORMS] * 2, width=80, max_rows=3) == (0, 0, [[-1, 0, 1]])


def test_a_shorter_form_is_tried_before_a_shorter_head() -> None:
    # two rows of 30: the 20-column form takes three rows (10 | 20 | 20), the 12-column one two (10 + 2 + 12 | 12)
    assert legend_rows(HEADS, [FORMS] * 2, width=30, max_rows=2) == (1, 0, [[-1, 0], [1]])
    # one row of 33: 10 + 2 + 8 + 2 + 8 = 30 with the full head, before the short head's 4 + 2 + 12 + 2 + 12 = 32
    assert legend_rows(HEADS, [FORMS] * 2, width=33, max_rows=1) == (2, 0, [[-1, 0, 1]])


def test_the_whole_percent_form_before_the_last_values_only() -> None:
    # one row of 22: only the 7-column form with the short head fits, 4 + 2 + 7 + 2 + 7 = 22
    assert legend_rows(HEADS, [FORMS] * 2, width=22, max_rows=1) == (3, 1, [[-1, 0, 1]])


def test_a_head_or_an_entry_exactly_as_wide_as_the_chart_fits() -> None:
    # the 10-column head on a row of its own, the 8-column entry below it
    assert legend_rows(HEADS, [FORMS], width=10, max_rows=2) == (2, 0, [[-1], [0]])
    # at 8 columns the full head is too wide; the 8-column form is not
    assert legend_rows(HEADS, [FORMS], width=8, max_rows=2) == (2, 1, [[-1], [0]])


def test_a_form_wider_than_the_chart_never_fits() -> None:
    # at 15 columns the 20-column form would take three rows but be cut: the 12-column one, one a row
    assert legend_rows(HEADS, [FORMS] * 2, width=15, max_rows=3) == (1, 0, [[-1], [0], [1]])
    # so is a head wider than the chart: the short head
    assert legend_rows(["H" * 20, "H" * 4], [FORMS] * 2, width=15, max_rows=3) == (1, 1, [[-1], [0], [1]])
    # even where, without a head, it would take a single row
    assert legend_rows([""], [FORMS], width=15, max_rows=1) == (1, 0, [[-1, 0]])


def test_when_nothing_fits_the_fewest_rows_within_the_hard_maximum() -> None:
    # 20 columns, one row: none fits; two rows first with the full head and the 8-column form (10 + 2 + 8 | 8)
    assert legend_rows(HEADS, [FORMS] * 2, width=20, max_rows=1, hard_max=2) == (2, 0, [[-1, 0], [1]])
    # without a row more allowed: the last values only, short head, 4 + 2 + 3 + 2 + 3
    assert legend_rows(HEADS, [FORMS] * 2, width=20, max_rows=1) == (4, 1, [[-1, 0, 1]])


def test_the_last_values_are_cut_to_the_rows_there_are() -> None:
    # eight entries at 10 columns: only the last values pack, 4 + 2 + 3 | 3 + 2 + 3 | … ; two rows kept
    assert legend_rows(HEADS, [FORMS] * 8, width=10, max_rows=2) == (4, 1, [[-1, 0], [1, 2]])
    assert legend_rows(HEADS, [FORMS] * 8, width=10, max_rows=2, hard_max=1) == (4, 1, [[-1, 0], [1, 2]])


def test_a_legend_without_entries_is_its_head() -> None:
    assert legend_rows(["losses"], [], width=10, max_rows=1) == (0, 0, [[-1]])


def test_a_legend_without_entries_on_a_chart_narrower_than_its_head_is_its_head_cut() -> None:
    assert legend_rows(["losses"], [], width=3, max_rows=1) == (0, 0, [[-1]])
