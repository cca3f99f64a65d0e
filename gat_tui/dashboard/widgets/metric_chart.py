"""A line chart of some figures of one or more runs (textual-plotext)."""

from __future__ import annotations

from collections.abc import Sequence

from textual_plotext import PlotextPlot

from gat_tui.dashboard.series import RunSeries
from gat_tui.events import FIGURE_LABELS

LABELS = FIGURE_LABELS


class MetricChart(PlotextPlot):
    """Draws `names` from each (label, series); redraw with `show`."""

    def __init__(self, title: str, names: Sequence[str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.chart_title = title
        self.names = tuple(names)
        self.points_drawn = 0  # how many data points the last draw had (tests and status read it)

    def show(self, runs: Sequence[tuple[str, RunSeries]], x_axis: str = "step", smoothing: float = 0.0) -> None:
        plt = self.plt
        plt.clear_data()
        plt.title(self.chart_title)
        plt.xlabel(x_axis)
        drawn = 0
        for run_label, series in runs:
            for name in self.names:
                xs, ys = series.points(name, x_axis, smoothing)
                if not xs:
                    continue
                label = LABELS.get(name, name) if len(runs) == 1 else f"{run_label}: {LABELS.get(name, name)}"
                plt.plot(xs, ys, label=label, marker="braille")
                drawn += len(xs)
        self.points_drawn = drawn
        self.refresh()
