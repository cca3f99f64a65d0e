"""A line chart of some figures of one or more runs: a legend with live readouts over a plotext plot.

The legend sits above the plot, never over the data, in 2 to 5 rows (by the chart's height); each entry reads
`L_F 0.62 min 0.25 @ 1200` (the last value, the best and where: recorded values, never smoothed) where the chart is wide enough,
else `L_F .62 ↓.25@1.2k`, `L_F .62 ↓.25` or the last value only. The y-range ignores outliers (2nd to 98th percentile,
padded; points beyond are drawn on the edge as ▲/▼), ticks are round numbers (1, 2, 5 × 10ᵏ on a log
scale) with distinct labels, and series are
down-sampled to about two points per column before drawing. Validation figures (one point per
epoch) are drawn with markers, so a single point, or two equal series, stay visible. Without
colour every series has its own marker character. The chart takes the focus (tab; its title is
then marked `▶` on a highlighted row), and `log_y` draws its y-axis in log scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from gat_tui.dashboard import chart_data
from gat_tui.dashboard.series import EPOCH_SERIES, RunSeries
from gat_tui.dashboard.widgets.run_header import middle_ellipsis
from gat_tui.events import FIGURE_LABELS

LABELS = FIGURE_LABELS
# (plotext colour, Rich colour) per series, in order
PALETTE = (("cyan", "cyan"), ("orange", "dark_orange"), ("green", "green"), ("magenta", "magenta"), ("yellow", "yellow"), ("blue", "blue"))
# without colour: one marker per series (ASCII, so NO_COLOR terminals need no special font)
MARKERS = ("*", "+", "o", "x", "#", "%")


class MetricChart(Vertical, can_focus=True):
    """Draws `names` from each (label, series); redraw with `show`, `redraw` repeats the last one."""

    DEFAULT_CSS = """
    MetricChart { height: 1fr; width: 1fr; }
    MetricChart > .chart-legend { height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    MetricChart > PlotextPlot { height: 1fr; }
    MetricChart:focus > .chart-legend { background: $accent 45%; text-style: bold; }
    """

    def __init__(
        self, title: str, names: Sequence[str], *, id: str | None = None, color: bool = True, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.chart_title = title
        self.names = tuple(names)
        self.color = color
        self.log_y = False
        self.points_drawn = 0  # how many data points the last draw had, after down-sampling (tests read it)
        self.points_given = 0  # and before
        self.clipped_points = 0  # outside the robust y-range, drawn on its edge
        self.legend_plain = ""  # the legend's text, without styles, a line per row
        self.legend_form = 0  # the readout form shown: 0 full, 1 compact, 2 without the step, 3 whole percent, 4 last only
        self._last: tuple[Sequence[tuple[str, RunSeries]], str, float] = ((), "step", 0.0)
        self._drawn: tuple[object, ...] | None = None  # what the last draw showed (see `_signature`)
        self._legend_markup = ""
        self.draws = 0  # how many times the plot was built (tests read it)

    def compose(self) -> ComposeResult:
        yield Static(escape(self.chart_title), classes="chart-legend")
        yield PlotextPlot()

    @property
    def plot(self) -> PlotextPlot:
        return self.query_one(PlotextPlot)

    def on_resize(self) -> None:
        self.redraw()

    def on_focus(self) -> None:
        self.redraw()  # the title takes its ▶ mark

    def on_blur(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        """Draw the last runs again, whether or not anything changed (a new size, log y)."""
        runs, x_axis, smoothing = self._last
        if runs:
            self.show(runs, x_axis, smoothing, force=True)

    def toggle_log_y(self) -> None:
        self.log_y = not self.log_y
        self.redraw()

    def _signature(self, runs: Sequence[tuple[str, RunSeries]], x_axis: str, smoothing: float) -> tuple[object, ...]:
        """What a draw depends on: series only grow, so their lengths tell whether this chart's data changed."""
        counts = tuple((label, id(series), tuple(len(series.points_by_name.get(name, ())) for name in self.names)) for label, series in runs)
        return (counts, x_axis, smoothing, self.log_y, self.color, self.plot.size, self.size)

    def show(
        self, runs: Sequence[tuple[str, RunSeries]], x_axis: str = "step", smoothing: float = 0.0, *, force: bool = False
    ) -> None:
        """Draw `names` of each run; nothing is done when none of what this chart shows has changed since the last draw."""
        self._last = (runs, x_axis, smoothing)
        if not self.is_mounted:
            return
        signature = self._signature(runs, x_axis, smoothing)
        if signature == self._drawn and not force:
            return  # a plot costs milliseconds of the UI thread, which training shares
        self._drawn = signature
        self.draws += 1
        plot = self.plot
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("")
        width = plot.size.width or 40
        buckets = max(8, width - 8)  # the data area's columns, about: two points (min, max) per column
        curves: list[tuple[int, str, list[float], list[float]]] = []  # (style index, name, xs, ys)
        readouts: list[tuple[int, str, str, chart_data.Readout]] = []  # (style index, name, label, readout)
        given = 0
        for run_label, series in runs:
            for name in self.names:
                xs, ys = series.points(name, x_axis, smoothing)
                if not xs:
                    continue
                given += len(xs)
                # an overlay's entries: the run's part shortened in the middle, so the metric's name always shows
                run_part = middle_ellipsis(run_label, max(10, (self.size.width or 40) // 3))
                label = LABELS.get(name, name) if len(runs) == 1 else f"{run_part}: {LABELS.get(name, name)}"
                index = len(readouts)
                # the readouts (last, best) are the recorded values: smoothing changes the curve only
                raw_xs, raw_ys = series.points(name, x_axis, 0.0) if smoothing else (xs, ys)
                found = chart_data.readout(name, raw_xs, raw_ys)
                if found is not None:
                    readouts.append((index, name, label, found))
                if self.log_y:
                    pairs = [(x, math.log10(y)) for x, y in zip(xs, ys) if y > 0]
                    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
                xs, ys = chart_data.downsample(xs, ys, buckets)
                if xs:
                    curves.append((index, name, xs, ys))
        self.points_given = given
        self._draw(curves, x_axis)
        self._legend(readouts, x_axis, smoothing)
        plot.refresh()

    def _style(self, index: int) -> tuple[str, str, str]:
        """(plotext colour, Rich colour, marker) of the index-th series."""
        plot_colour, rich_colour = PALETTE[index % len(PALETTE)]
        return plot_colour, rich_colour, MARKERS[index % len(MARKERS)]

    def _draw(self, curves: list[tuple[int, str, list[float], list[float]]], x_axis: str) -> None:
        plt = self.plot.plt
        all_y = [y for _, _, _, ys in curves for y in ys]
        all_x = [x for _, _, xs, _ in curves for x in xs]
        drawn = clipped_count = 0
        if not curves:
            self.points_drawn = self.clipped_points = 0
            return
        bottom, top = chart_data.robust_range(all_y)
        percent = all(chart_data.is_fraction(name) for _, name, _, _ in curves) and not self.log_y
        if percent:  # accuracies: never beyond [0, 1]
            bottom, top = max(bottom, 0.0), min(top, 1.0)
            if top <= bottom:
                bottom, top = max(0.0, bottom - 0.05), min(1.0, top + 0.05)
        for index, name, xs, ys in curves:
            plot_colour, _, char = self._style(index)
            colour = plot_colour if self.color else "default"
            shown = [min(max(y, bottom), top) for y in ys]
            line_marker = "braille" if self.color else char
            if len(xs) > 1:
                plt.plot(xs, shown, marker=line_marker, color=colour)
            if name in EPOCH_SERIES or len(xs) == 1:
                plt.scatter(xs, shown, marker="●" if self.color else char, color=colour)
            above, below = chart_data.clipped(xs, ys, bottom, top)
            if above:
                plt.scatter([p[0] for p in above], [p[1] for p in above], marker="▲" if self.color else "^", color=colour)
            if below:
                plt.scatter([p[0] for p in below], [p[1] for p in below], marker="▼" if self.color else "v", color=colour)
            clipped_count += len(above) + len(below)
            drawn += len(xs)
        plt.ylim(bottom, top)
        plt.xaxes(True, False)  # no top or right frame: a row more for the data
        plt.yaxes(True, False)
        height = self.plot.size.height or 10
        tick_count = max(2, min(5, height // 3))
        y_ticks = chart_data.log_ticks(bottom, top, tick_count) if self.log_y else chart_data.nice_ticks(bottom, top, tick_count)
        plt.yticks(y_ticks, [chart_data.tick_label(t, y_ticks, percent=percent, log=self.log_y) for t in y_ticks])
        left, right = min(all_x), max(all_x)
        if right > left:
            width = self.plot.size.width or 40
            x_ticks = chart_data.nice_ticks(left, right, count=max(2, min(5, width // 12)))
            if x_axis in ("step", "epoch"):  # whole steps and epochs only
                x_ticks = [t for t in x_ticks if float(t).is_integer()] or [float(round(left)), float(round(right))]
            labels = [chart_data.format_x(t, x_axis) if x_axis == "time" else chart_data.tick_label(t, x_ticks) for t in x_ticks]
            plt.xticks(x_ticks, labels)
            plt.xlim(left, right)
        else:
            plt.xticks([left], [chart_data.format_x(left, x_axis)])
            plt.xlim(left - 1, left + 1)
        self.points_drawn, self.clipped_points = drawn, clipped_count

    def legend_max_rows(self) -> int:
        """Rows the legend should take: 2 on a short chart (80×24), up to 5 on a tall one; the plot keeps the rest."""
        return min(5, max(2, (self.size.height or 8) // 4))

    def _legend(self, readouts: list[tuple[int, str, str, chart_data.Readout]], x_axis: str, smoothing: float) -> None:
        """The title with the x-axis, log and smoothing, then an entry per series, in the longest form that fits.

        `━ L_F 0.62 min 0.25 @ 1200` where there is room, else `━ L_F .62 ↓.25@1.2k`, `━ L_F .62 ↓.25`
        (accuracies in whole percent if need be) or the last value only (`chart_data.legend_rows`),
        flowed over `legend_max_rows` rows, or one more rather than lose the best values.
        """
        modes = [x_axis]
        if self.log_y:
            modes.append("log")
        if smoothing:
            modes.append(f"smooth {smoothing:g}")
        short_modes = modes[1:] if x_axis == "step" else list(modes)  # steps are the default
        if self.clipped_points:
            modes.append(f"{self.clipped_points} clipped")
            short_modes.append(f"{self.clipped_points} clip")
        title = f"▶ {self.chart_title}" if self.has_focus else self.chart_title  # the focused chart (tab), marked
        heads = [f"{title} ({', '.join(modes)})"]
        heads.append(f"{title} ({', '.join(short_modes)})" if short_modes else title)
        width = max(16, (self.size.width or 40) - 2)
        swatches = [("━" if self.color else self._style(index)[2]) for index, _, _, _ in readouts]
        forms = []
        for (_, name, label, found), swatch in zip(readouts, swatches):
            run_prefix = label[: label.index(": ") + 2] if ": " in label else ""
            short = run_prefix + chart_data.COMPACT_LABELS.get(name, LABELS.get(name, name))
            forms.append([f"{swatch} {text}" for text in found.forms(name, label, short, x_axis)])
        max_rows = self.legend_max_rows()
        form, head_index, rows = chart_data.legend_rows(heads, forms, width, max_rows, hard_max=max_rows + 1)
        head = heads[head_index]
        self.legend_form = form
        plain_rows: list[str] = []
        markup_rows: list[str] = []
        for row in rows:
            plain_parts: list[str] = []
            markup_parts: list[str] = []
            for entry in row:
                if entry < 0:
                    plain_parts.append(head)
                    markup_parts.append(f"[b]{escape(head)}[/b]")
                    continue
                text = forms[entry][form]
                plain_parts.append(text)
                index = readouts[entry][0]
                swatch, rest = text[:1], text[1:]
                markup_parts.append(f"[{self._style(index)[1]}]{escape(swatch)}[/]{escape(rest)}" if self.color else escape(text))
            plain_rows.append("  ".join(plain_parts))
            markup_rows.append("  ".join(markup_parts))
        self.legend_plain = "\n".join(plain_rows)
        legend = self.query_one(".chart-legend", Static)
        markup = "\n".join(markup_rows)
        if legend.styles.height is None or legend.styles.height.value != len(rows):
            # the plot gets taller or shorter: draw again once it has, so its ticks suit its new height
            legend.styles.height = len(rows)
            self.call_after_refresh(self.redraw)
        elif markup == self._legend_markup:
            return
        self._legend_markup = markup
        legend.update(markup, layout=False)  # its height is set above: no layout of the whole screen
