"""Accuracy (%) against ε as a terminal line chart (plotext), for `gat-tui eval` and `gat-tui report`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.text import Text

# without colour, a distinct character per line keeps them apart
PLAIN_MARKERS = ("o", "x", "+", "*", "#")


def accuracy_chart(
    lines: Mapping[str, Sequence[tuple[float, float]]],
    title: str,
    x_label: str | None = None,
    width: int = 72,
    height: int = 16,
    color: bool = True,
) -> Text:
    """One chart of (ε, accuracy %) lines by label, the y-axis fixed at 0–100."""
    import plotext

    plotext.clear_figure()
    plotext.plotsize(width, height)
    if not color:
        plotext.theme("clear")
    for index, (label, points) in enumerate(lines.items()):
        marker = "braille" if color else PLAIN_MARKERS[index % len(PLAIN_MARKERS)]
        plotext.plot([x for x, _ in points], [y for _, y in points], label=label, marker=marker)
    plotext.title(title)
    if x_label is not None:
        plotext.xlabel(x_label)
    plotext.ylim(0, 100)
    return Text.from_ansi(plotext.build())
