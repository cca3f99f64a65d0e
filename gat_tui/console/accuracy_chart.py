"""Accuracy (%) against ε as a terminal line chart (plotext), for `gat-tui eval` and `gat-tui report`.

The legend is printed under the plot, not over it (plotext draws its own in the top-left corner,
where the clean accuracies sit); every line has its own marker character, so curves that meet
stay apart, and the legend says which line lies under another where they coincide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from rich.text import Text

# a distinct character per line, with or without colour
PLAIN_MARKERS = ("o", "x", "+", "*", "#")
# plotext's colour names and Rich's for the same terminal colour, so the legend matches the plot
# (plotext's "orange" is the terminal's colour 3, which Rich calls "yellow")
COLOURS = (("blue", "blue"), ("red", "red"), ("green", "green"), ("magenta", "magenta"), ("cyan", "cyan"), ("orange", "yellow"))
# lines of a chart that are not the plot's rows: the title, the frame's top and bottom, the x ticks (and the x label)
_FRAME_ROWS = 4


def plot_row(y: float, rows: int) -> int:
    """The row (0 at the bottom) plotext draws accuracy `y` (%) on, in a 0-100 plot of `rows` rows.

    plotext's own rule (utility.get_matrix_data), rounding off float noise as it does."""
    return math.floor(round(0.5 + (rows - 1) * y / 100, 8))


def hidden_under(lines: Mapping[str, Sequence[tuple[float, float]]], rows: int) -> dict[str, tuple[str, list[float]]]:
    """label -> (the first later line that covers it, the x where it does), for lines a later one hides.

    plotext draws lines in order, so a later line's marker covers an earlier one's where both fall
    in the same character: the same x and accuracies on the same row of the plot's `rows`."""
    labels = list(lines)
    found: dict[str, tuple[str, list[float]]] = {}
    for index, label in enumerate(labels):
        for later in labels[index + 1:]:
            over = {x: y for x, y in lines[later]}
            shared = [x for x, y in lines[label] if x in over and plot_row(over[x], rows) == plot_row(y, rows)]
            if shared:
                found[label] = (later, shared)
                break
    return found


def legend(
    lines: Mapping[str, Sequence[tuple[float, float]]], color: bool, rows: int, x_text: Mapping[float, str] | None = None
) -> Text:
    """`o baseline`, `x fg_l2`, ..., one line each, with a note for the points a later line covers
    in a plot of `rows` rows."""
    text = Text()
    covered = hidden_under(lines, rows)
    markers = {label: PLAIN_MARKERS[index % len(PLAIN_MARKERS)] for index, label in enumerate(lines)}
    for index, label in enumerate(lines):
        marker = PLAIN_MARKERS[index % len(PLAIN_MARKERS)]
        if index:
            text.append("\n")
        text.append(marker, style=COLOURS[index % len(COLOURS)][1] if color else "")
        text.append(f" {label}")
        if label in covered:
            over, xs = covered[label]
            where = "every ε" if len(xs) == len(lines[label]) else "ε " + ", ".join((x_text or {}).get(x, f"{x:g}") for x in xs)
            text.append(f" (hidden under {markers[over]} at {where})", style="dim")
    return text


def accuracy_chart(
    lines: Mapping[str, Sequence[tuple[float, float]]],
    title: str,
    x_label: str | None = None,
    width: int = 72,
    height: int = 16,
    color: bool = True,
    x_ticks: Sequence[tuple[float, str]] | None = None,
) -> Text:
    """One chart of (ε, accuracy %) lines by label, the y-axis fixed at 0–100, the legend below it.

    `x_ticks`: (ε, label) pairs, e.g. the evaluated ε as `1/255`; default plotext's own ticks."""
    import plotext

    plotext.clear_figure()
    plotext.plotsize(width, height)
    if not color:
        plotext.theme("clear")
    for index, points in enumerate(lines.values()):
        marker = PLAIN_MARKERS[index % len(PLAIN_MARKERS)]
        colour = COLOURS[index % len(COLOURS)][0] if color else None
        plotext.plot([x for x, _ in points], [y for _, y in points], marker=marker, color=colour)
    plotext.title(title)
    if x_label is not None:
        plotext.xlabel(x_label)
    if x_ticks:
        plotext.xticks([x for x, _ in x_ticks], [text for _, text in x_ticks])
    plotext.ylim(0, 100)
    chart = Text.from_ansi(plotext.build())
    chart.append("\n")
    rows = height - _FRAME_ROWS - (x_label is not None)
    chart.append_text(legend(lines, color, max(rows, 1), dict(x_ticks or ())))
    return chart
