"""The terminal chart of accuracy against ε (`gat-tui eval`, `gat-tui report`): its size, axes,
markers, colours and legend, read off the drawn text.

plotext puts a value y of the 0-100 axis on row floor(0.5 + (rows - 1) · y / 100) of a plot of
`rows` rows (0 at the bottom): rows = height - 4 (title, top and bottom frame, x ticks), one fewer
with an x label. The expected rows below are worked out with that rule by hand.
"""

from __future__ import annotations

from rich.color import Color
from rich.style import Style
from rich.text import Text

from gat_tui.console.accuracy_chart import accuracy_chart, legend

TWO_LINES = {"a": [(0.0, 90.0), (0.5, 50.0), (1.0, 20.0)], "b": [(0.0, 90.0), (0.5, 60.0), (1.0, 40.0)]}
TICKS = [(0.0, "0"), (0.5, "1/2"), (1.0, "1")]


def split(chart: Text, height: int) -> tuple[list[str], list[str]]:
    """(the plot's `height` lines, the legend's lines after the blank line under the plot)."""
    lines = chart.plain.split("\n")
    assert lines[height] == ""
    return lines[:height], lines[height + 1:]


def inside_frame(plot: list[str]) -> list[str]:
    """The plot's rows between the frame's left (┤ or │ after the y labels) and right edges."""
    top = next(index for index, line in enumerate(plot) if "┌" in line)
    bottom = next(index for index, line in enumerate(plot) if "└" in line)
    left = plot[top].index("┌") + 1
    right = plot[top].index("┐")
    return [line[left:right] for line in plot[top + 1:bottom]]


def colours_by_character(chart: Text, start: int, end: int) -> dict[str, set[int]]:
    """character -> the colour numbers it is drawn in, between offsets start and end of the chart."""
    colour_at: dict[int, int] = {}
    for span in chart.spans:
        style = span.style if isinstance(span.style, Style) else Style.parse(span.style)
        if style.color is not None and style.color.number is not None:
            for offset in range(max(span.start, start), min(span.end, end)):
                colour_at[offset] = style.color.number
    found: dict[str, set[int]] = {}
    for offset, number in colour_at.items():
        found.setdefault(chart.plain[offset], set()).add(number)
    return found


def test_the_chart_is_width_by_height_with_the_legend_under_it() -> None:
    plot, below = split(accuracy_chart(TWO_LINES, "T"), 16)  # the defaults: 72 × 16
    assert [len(line) for line in plot] == [72] * 16
    assert below == ["o a (hidden under x at ε 0)", "x b"]
    plot, below = split(accuracy_chart(TWO_LINES, "T", width=40, height=12, color=False), 12)
    assert [len(line) for line in plot] == [40] * 12
    assert plot[0].strip() == "T" and "a" not in "".join(inside_frame(plot)) and len(below) == 2


def test_the_y_axis_runs_from_0_to_100_whatever_the_data() -> None:
    # data between 20 and 60; 12 lines with an x label leave 7 rows: ticks 100/6 % apart
    plot, _ = split(accuracy_chart(TWO_LINES, "T", "ε", width=40, height=12, color=False), 12)
    labels = [line.split("┤")[0].strip() for line in plot if "┤" in line]
    assert labels == ["100.0", "83.3", "66.7", "50.0", "33.3", "16.7", "0.0"]


def test_each_line_is_drawn_with_its_own_marker() -> None:
    lines = {"a": [(0.0, 10.0), (1.0, 15.0)], "b": [(0.0, 40.0), (1.0, 45.0)], "c": [(0.0, 80.0), (1.0, 85.0)]}
    plot, below = split(accuracy_chart(lines, "T", width=30, height=16, color=False), 16)
    drawn = "".join(inside_frame(plot))
    assert set(drawn) == {" ", "o", "x", "+"}
    assert below == ["o a", "x b", "+ c"]


def test_the_x_label_is_printed_under_the_ticks_only_when_given() -> None:
    plot, _ = split(accuracy_chart(TWO_LINES, "T", "ε (L2 norm)", width=40, height=12, color=False, x_ticks=TICKS), 12)
    assert plot[-2].split() == ["0", "1/2", "1"] and plot[-1].strip() == "ε (L2 norm)"
    plot, _ = split(accuracy_chart(TWO_LINES, "T", width=40, height=12, color=False, x_ticks=TICKS), 12)
    assert plot[-1].split() == ["0", "1/2", "1"] and "└" in plot[-2]


def test_the_legend_s_colours_are_the_plot_s() -> None:
    # six lines: the sixth has the first's marker again and plotext's "orange", the terminal's colour 3
    lines = {f"l{index}": [(0.0, 10.0 + 15 * index), (1.0, 12.0 + 15 * index)] for index in range(6)}
    chart = accuracy_chart(lines, "T", width=30, height=20)  # coloured by default
    plot_end = len("\n".join(chart.plain.split("\n")[:20]))
    in_plot = colours_by_character(chart, 0, plot_end)
    in_legend = colours_by_character(chart, plot_end, len(chart.plain))
    blue, red, green, magenta, cyan, colour_3 = (Color.parse(name).number for name in ("blue", "red", "green", "magenta", "cyan", "yellow"))
    expected = {"o": {blue, colour_3}, "x": {red}, "+": {green}, "*": {magenta}, "#": {cyan}}
    assert {marker: in_plot[marker] for marker in expected} == expected
    assert {marker: in_legend[marker] for marker in expected} == expected
    plain = accuracy_chart(lines, "T", width=30, height=20, color=False)
    assert colours_by_character(plain, 0, len(plain.plain)) == {}


def test_the_legend_says_where_a_line_is_hidden_under_a_later_one() -> None:
    lines = {
        "a": [(0.5, 50.0), (1.0, 30.0), (2.0, 10.0)],
        "b": [(0.5, 52.0), (1.0, 34.0), (2.0, 40.0)],  # covers a at 0.5 and 1 (rows of 10 %), not at 2
        "c": [(0.5, 90.0), (1.0, 80.0)],
        "d": [(0.5, 88.0), (1.0, 84.0)],  # covers c everywhere
    }
    text = legend(lines, False, 11, {0.5: "1/2", 1.0: "1"})  # 11 rows: 10 % apart
    assert text.plain.split("\n") == [
        "o a (hidden under x at ε 1/2, 1)", "x b", "+ c (hidden under * at every ε)", "* d",
    ]
    assert {span.style for span in text.spans} == {"dim"}  # no colour, the notes dimmed
    # without tick texts the ε are printed as numbers; a later line than the next may be the one on top
    text = legend({"a": [(0.5, 50.0), (2.0, 10.0)], "b": [(0.5, 90.0)], "c": [(0.25, 50.0), (0.5, 48.0)]}, True, 11)
    assert text.plain.split("\n") == ["o a (hidden under + at ε 0.5)", "x b", "+ c"]
    note = text.plain.index(" (hidden")
    styles = {(span.start, span.end): span.style for span in text.spans}
    assert styles[(0, 1)] == "blue" and styles[(note, text.plain.index("\n"))] == "dim"


def labelled_rows_and_half(plot: list[str]) -> tuple[dict[str, str], int]:
    """(the plot's rows inside the frame by their y label, the column of the middle x tick)."""
    rows = {line.split("┤")[0].strip(): line.split("┤")[1] for line in plot if "┤" in line}
    bottom = next(line for line in plot if "└" in line)
    return rows, [index for index, char in enumerate(bottom.split("└")[1]) if char == "┬"][1]


def test_a_point_is_hidden_only_where_the_later_line_s_marker_is_drawn_over_it() -> None:
    # 12 lines with an x label: 7 rows, 100/6 % apart. At ε 1/2, a's 50 % is on row floor(0.5 + 3) = 3 and b's
    # 60 % on floor(0.5 + 3.6) = 4: a's marker shows. At ε 0 both are at 90 %: b's covers a's.
    plot, below = split(accuracy_chart(TWO_LINES, "T", "ε", width=40, height=12, color=False, x_ticks=TICKS), 12)
    rows, half = labelled_rows_and_half(plot)
    assert rows["50.0"][half] == "o" and rows["83.3"][0] == "x"
    assert below == ["o a (hidden under x at ε 0)", "x b"]
    # without an x label the same chart has 8 rows, 100/7 % apart: at ε 1/2, 50 % is on row floor(0.5 + 3.5) = 4
    # and 60 % on floor(0.5 + 4.2) = 4 (the one labelled 50.0): b covers a there too
    plot, below = split(accuracy_chart(TWO_LINES, "T", None, width=40, height=12, color=False, x_ticks=TICKS), 12)
    rows, half = labelled_rows_and_half(plot)
    assert rows["50.0"][half] == "x" and "o" not in rows["50.0"]
    assert below == ["o a (hidden under x at ε 0, 1/2)", "x b"]


def test_rows_of_the_legend_s_rule_on_a_tall_and_a_one_row_chart() -> None:
    # 16 lines with an x label: 11 rows 10 % apart; 50.2 % and 54 % share row 5, 50.2 % and 56 % do not
    same = {"a": [(0.0, 50.2), (1.0, 90.0)], "b": [(0.0, 54.0), (1.0, 10.0)]}
    apart = {"a": [(0.0, 50.2), (1.0, 90.0)], "b": [(0.0, 56.0), (1.0, 10.0)]}
    assert split(accuracy_chart(same, "T", "ε", width=30, height=16, color=False), 16)[1][0] == "o a (hidden under x at ε 0)"
    assert split(accuracy_chart(apart, "T", "ε", width=30, height=16, color=False), 16)[1][0] == "o a"
    # 6 lines with an x label: one row, where every point falls
    far = {"a": [(0.0, 10.0), (1.0, 90.0)], "b": [(0.0, 40.0), (1.0, 20.0)]}
    assert split(accuracy_chart(far, "T", "ε", width=30, height=6, color=False), 6)[1][0] == "o a (hidden under x at every ε)"
