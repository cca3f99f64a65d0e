"""What the charts, previews and printers compute, without an App: readouts, ranges, down-sampling, scaling."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from gat_tui.console.headless import HeadlessPrinter, summary_lines
from gat_tui.dashboard.chart_data import (
    clipped,
    compact_value,
    compact_x,
    downsample,
    format_value,
    legend_rows,
    log_ticks,
    nice_ticks,
    readout,
    robust_range,
    tick_label,
)
from gat_tui.dashboard.previews import amplification, integer_width, perturbation_heat
from gat_tui.dashboard.series import RunSeries
from gat_tui.events import RunFinished, RunStarted, StepMetrics


def test_readout_is_the_last_value_and_the_best_with_its_step() -> None:
    found = readout("loss_f", [100, 200, 300], [0.9, 0.25, 0.62])
    assert found is not None and (found.last, found.best, found.best_x) == (0.62, 0.25, 200)
    assert found.text("loss_f", "L_F", "step") == "L_F 0.62 min 0.25 @ 200"
    accuracy = readout("val_acc_clean", [1, 2, 3], [0.5, 0.8, 0.7])
    assert accuracy is not None and accuracy.best == 0.8 and accuracy.best_x == 2
    assert accuracy.text("val_acc_clean", "val clean", "epoch") == "val clean 70.0% max 80.0% @ 2"
    assert readout("loss_f", [], []) is None
    assert readout("loss_f", [1, 2], [float("nan"), 1.0]) == readout("loss_f", [2], [1.0])


def test_compact_readouts_keep_last_and_best_with_its_step() -> None:
    found = readout("loss_f", [100, 1200, 2400], [0.9, 0.25, 0.62])
    assert found is not None
    assert found.compact("loss_f", "L_F", "step") == "L_F .62 ↓.25@1.2k"
    assert found.compact("loss_f", "L_F", "step", where=False) == "L_F .62 ↓.25"
    accuracy = readout("val_acc_fgm_l2", [1, 2, 3], [0.5, 0.881, 0.875])
    assert accuracy is not None and accuracy.compact("val_acc_fgm_l2", "FGM", "epoch") == "FGM 87.5 ↑88.1@2"
    assert accuracy.forms("val_acc_fgm_l2", "val FGM-L2", "FGM", "epoch") == (
        "val FGM-L2 87.5% max 88.1% @ 2", "FGM 87.5 ↑88.1@2", "FGM 87.5 ↑88.1", "FGM 88 ↑88", "FGM 88"
    )
    assert [compact_value("loss_g", v) for v in (0.625, 1.5, 12.34, -0.5, 2e-5, 0.0)] == [".625", "1.5", "12.3", "-.5", "2.0e-5", "0"]
    assert [compact_x(x, "step") for x in (950, 1000, 12_000, 125_400, 3_400_000)] == ["950", "1k", "12k", "125k", "3.4M"]
    assert compact_x(3, "epoch") == "3" and compact_x(75, "time") == "1:15"


def test_the_legend_takes_the_longest_form_that_fits_its_rows() -> None:
    forms = [("━ L_F 0.62 min 0.25 @ 1200", "━ L_F .62 ↓.25@1.2k", "━ L_F .62 ↓.25", "━ L_F .62 ↓.25", "━ L_F .62")] * 2
    heads = ["losses (step)", "losses"]
    # wide: the full form, the head and both entries on one row
    assert legend_rows(heads, forms, width=80, max_rows=3) == (0, 0, [[-1, 0, 1]])
    # ~30 columns: the head, then one full entry per row
    assert legend_rows(heads, forms, width=27, max_rows=3) == (0, 0, [[-1], [0], [1]])
    # two rows only: compact entries, two per row
    assert legend_rows(heads, forms, width=40, max_rows=2) == (1, 0, [[-1, 0], [1]])
    # five accuracies at 80×24: whole percent and the short head, in a row more than asked, rather than the last values only
    accuracy = [("━ val adv 60.0% max 60.0% @ 80", "━ tr adv 60.0 ↑60.0@80", "━ tr adv 60.0 ↑60.0", "━ tr adv 60 ↑60", "━ tr adv 60")] * 5
    found = legend_rows(["accuracy (step, 1 clipped)", "accuracy (1 clip)"], accuracy, width=37, max_rows=2, hard_max=3)
    assert found == (3, 1, [[-1, 0], [1, 2], [3, 4]])
    # nothing with the best fits: the last values, cut to the rows there are
    form, head, rows = legend_rows(heads, forms * 5, width=16, max_rows=2)
    assert (form, head, len(rows)) == (4, 1, 2)


def test_an_outlier_does_not_squash_the_range_and_is_clipped() -> None:
    ys = [1.0 + 0.01 * (i % 7) for i in range(100)]
    ys[3] = 1000.0
    bottom, top = robust_range(ys)
    assert bottom < 1.0 and 1.06 < top < 2.0
    above, below = clipped(list(range(100)), ys, bottom, top)
    assert above == [(3, top)] and below == []


def test_few_points_keep_their_extremes_and_a_flat_series_is_mid_range() -> None:
    bottom, top = robust_range([0.0, 10.0, 5.0])
    assert bottom < 0.0 and top > 10.0
    bottom, top = robust_range([0.3, 0.3])
    assert bottom < 0.3 < top
    assert robust_range([]) == (0.0, 1.0)


def test_downsampling_keeps_two_points_per_bucket_and_every_spike() -> None:
    xs = list(range(10_000))
    ys = [0.0] * 10_000
    ys[5_123] = 9.0
    ys[7_000] = -4.0
    small_x, small_y = downsample(xs, ys, buckets=50)
    assert len(small_x) <= 100
    assert 9.0 in small_y and -4.0 in small_y
    assert small_x == sorted(small_x)
    assert downsample([1, 2, 3], [4, 5, 6], buckets=50) == ([1, 2, 3], [4, 5, 6])


def test_ticks_are_round() -> None:
    # steps of 1, 2 or 5 times a power of ten only (issue 21): never 0.25 / 0.75 or 250 / 750
    assert nice_ticks(0.0, 1.0, 4) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(3.0, 1217.0, 4) == [200.0, 400.0, 600.0, 800.0, 1000.0, 1200.0]
    ticks = nice_ticks(0.2, 0.9, 3)
    assert [tick_label(t, ticks, percent=True) for t in ticks] == ["20%", "40%", "60%", "80%"]
    ticks = nice_ticks(0.0, 1.0, 4)
    assert [tick_label(t, ticks) for t in ticks] == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    assert format_value("loss_f", 0.0001234) == "1.23e-04"


def test_images_scale_by_whole_factors() -> None:
    assert integer_width(32, 70) == 64
    assert integer_width(32, 32) == 32
    assert integer_width(32, 31) == 16
    assert integer_width(32, 13) == 8
    assert integer_width(12, 5) == 4


def test_the_heat_map_removes_the_mean_and_prints_its_scale() -> None:
    perturbation = np.full((3, 4, 4), 0.1, dtype=np.float32)
    perturbation[:, 0, 0] = 0.3
    heat, scale, mean = perturbation_heat(perturbation)
    assert heat.shape == (1, 4, 4) and heat.max() == pytest.approx(1.0)
    assert mean == pytest.approx(0.1125) and scale == pytest.approx(0.1875)
    assert heat[0, 1, 1] < 0.1  # the constant part is gone
    assert amplification(perturbation) == 1
    assert amplification(np.array([0.01])) == 50
    assert amplification(np.zeros(3)) == 1


def test_series_over_wall_clock_time_and_a_resumed_runs_history(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [
        {"event": "step", "epoch": 1, "step": 10, "time": 5.0, "loss_f": 1.0},
        {"event": "epoch", "epoch": 1, "step": 20, "time": 9.0, "val_acc_clean": 0.5},
        {"event": "step", "epoch": 2, "step": 30, "time": 14.0, "loss_f": 0.5},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    history = RunSeries.from_metrics_file(path, up_to_step=20)
    assert history.points("loss_f", "time") == ([5.0], [1.0])
    assert history.points("val_acc_clean", "time") == ([9.0], [0.5])
    live = RunSeries()
    live.add_step(StepMetrics(epoch=2, step=30, time=15.0, loss_f=0.4, loss_g=None, pert_l2=None, pert_linf=None, images_per_second=1.0))
    live.prepend(history)
    assert live.points("loss_f", "step") == ([10.0, 30.0], [1.0, 0.4])


def finished(status: str = "finished") -> RunFinished:
    return RunFinished(status=status, epochs_done=3, step=120, wall_seconds=75.0, best_epoch=2, best_value=0.8,
                       test_acc_clean=0.9, test_acc_adv=0.7, test_acc_fgm_l2=0.6)


def test_the_summary_names_the_folder_and_the_next_commands() -> None:
    lines = summary_lines(finished(), "runs/x")
    assert lines[0] == "run finished: 3 epochs, 120 steps, 1:15"
    assert "clean 90.00%" in lines[1] and "best epoch 2 (validation)" in lines
    assert "gat-tui eval runs/x" in lines[-2] and "gat-tui resume runs/x" in lines[-1]


def started() -> RunStarted:
    return RunStarted(run_dir="runs/x", preset="p", method="gat", device="cpu", dataset="synthetic", num_classes=10,
                      train_images=100, steps_per_epoch=1000, epochs=100)


def step(number: int) -> StepMetrics:
    return StepMetrics(epoch=1, step=number, time=1.0, loss_f=1.2345, loss_g=0.5432, pert_l2=1.234, pert_linf=0.1,
                       images_per_second=12345.0)


def test_the_headless_progress_line_fits_80_columns_and_ends_with_the_commands() -> None:
    out = io.StringIO()
    printer = HeadlessPrinter(Console(file=out, force_terminal=True, width=80))
    printer(started())
    printer(step(50_000))
    rendered = Console(width=80, file=io.StringIO(), record=True)
    rendered.print(printer.progress.get_renderable())
    lines = rendered.export_text().splitlines()
    assert len([line for line in lines if line.strip()]) == 1 and all(len(line) <= 80 for line in lines), lines
    assert "L_F 1.234" in lines[0] or "L_F 1.23" in lines[0]
    printer(finished())
    assert "gat-tui resume runs/x" in out.getvalue()


def test_the_headless_printer_writes_plain_periodic_lines_off_a_terminal() -> None:
    out = io.StringIO()
    printer = HeadlessPrinter(Console(file=out, force_terminal=False, width=200), plain_every=3600.0)
    printer(started())
    printer(step(10))
    printer(step(20))  # within the period: not printed
    printer(finished())
    text = out.getvalue()
    assert "step 10" in text and "step 20" not in text
    assert "\x1b[" not in text
    assert "gat-tui eval runs/x" in text


def test_short_charts_get_two_distinct_round_ticks_even_for_tiny_values() -> None:
    # a short ‖δ‖∞ chart asked for two ticks on 0.0014–0.0086 used to get one tick, labelled `0`
    ticks = nice_ticks(0.0014, 0.0086, 2)
    assert ticks == [0.002, 0.004, 0.006, 0.008]
    assert [tick_label(t, ticks) for t in ticks] == ["0.002", "0.004", "0.006", "0.008"]
    ticks = nice_ticks(1e-5, 3e-5, 3)
    assert [tick_label(t, ticks) for t in ticks] == ["1e-5", "1.5e-5", "2e-5", "2.5e-5", "3e-5"]
    ticks = nice_ticks(0.00231, 0.00235, 2)
    labels = [tick_label(t, ticks) for t in ticks]
    assert len(ticks) >= 2 and len(set(labels)) == len(labels)
    assert tick_label(0.005, [0.005]) == "0.005"  # a lone tick keeps its own digits


def test_log_scale_ticks_fall_on_one_two_five_times_powers_of_ten() -> None:
    import math

    def shown(low: float, high: float, count: int) -> list[str]:
        ticks = log_ticks(math.log10(low), math.log10(high), count)
        return [tick_label(t, ticks, log=True) for t in ticks]

    assert shown(0.3, 0.6, 3) == ["0.3", "0.4", "0.5", "0.6"]  # within one 1-2-5 step: round values of the range
    assert shown(0.15, 0.6, 3) == ["0.2", "0.5"]
    assert shown(0.002, 0.008, 3) == ["0.002", "0.005"]
    assert shown(1e-6, 1.0, 4) == ["1e-6", "1e-4", "0.01", "1"]  # too many 1-2-5 values: decades


def test_smoothing_is_tensorboards_debiased_average() -> None:
    from gat_tui.dashboard.series import smooth

    # by hand, factor 0.5: averages 0, 0.5, 1.25 over debiasing 0.5, 0.75, 0.875
    assert smooth([0.0, 1.0, 2.0], 0.5) == pytest.approx([0.0, 2 / 3, 1.25 / 0.875])
    assert smooth([3.0, 3.0, 3.0], 0.9) == pytest.approx([3.0, 3.0, 3.0])  # no lag from a starting value
    assert smooth([1.0, 2.0], 0.0) == [1.0, 2.0]


@pytest.mark.asyncio
async def test_readouts_are_the_recorded_values_whatever_the_smoothing() -> None:
    from textual.app import App, ComposeResult

    from gat_tui.dashboard.widgets.metric_chart import MetricChart

    series = RunSeries()
    losses = [2.0, 1.9, 0.234, 1.8, 1.7, 1.01]  # smoothed at 0.9 the minimum would be about 1.01, at the end
    for index, loss in enumerate(losses):
        series.add_step(StepMetrics(epoch=1, step=10 * (index + 1), time=1.0, loss_f=loss, loss_g=None, pert_l2=None,
                                    pert_linf=None, images_per_second=1.0))

    class ChartApp(App[None]):
        def compose(self) -> ComposeResult:
            yield MetricChart("losses", ("loss_f",), id="chart")

    app = ChartApp()
    async with app.run_test(size=(100, 20)) as pilot:
        chart = app.query_one(MetricChart)
        chart.show([("run", series)], "step", 0.9)
        await pilot.pause()
        assert "smooth 0.9" in chart.legend_plain
        assert "L_F 1.01 min 0.234 @ 30" in chart.legend_plain, chart.legend_plain


def test_the_preview_shows_a_triple_at_80x24_and_the_whole_panel_at_120x40() -> None:
    from gat_tui.dashboard.widgets.preview_grid import preview_layout

    # the preview box of the training screen: about 51×10 cells at 80×24, 37×6 at 60×20, 78×14 at 120×40
    at_80 = preview_layout(32, 32, 8, 51, 10)
    assert at_80.shown >= 1 and at_80.image_cells == 8 and 3 * 9 + at_80.label_width <= 51
    at_60 = preview_layout(16, 16, 4, 37, 6)
    assert at_60.shown == 1 and 3 * 9 + at_60.label_width <= 37
    at_120 = preview_layout(16, 16, 4, 78, 14)
    assert at_120.shown == 4 and at_120.per_row == 2  # two triples side by side, two rows of them
    roomy = preview_layout(32, 32, 2, 200, 60)
    assert roomy.shown == 2 and roomy.image_cells == 32  # where all fit, the largest images that still show all


def test_the_headless_bar_moves_every_step_and_reads_epoch_k_of_n() -> None:
    from rich.progress import TimeRemainingColumn

    from gat_tui.events import StepProgress

    printer = HeadlessPrinter(Console(file=io.StringIO(), force_terminal=True, width=80))
    printer(started())
    assert printer.task is not None
    printer(StepProgress(epoch=3, step=2345))  # between reports: no figures, the bar moves
    task = printer.progress.tasks[0]
    assert task.completed == 2345 and task.description == "epoch 3/100"
    assert any(isinstance(column, TimeRemainingColumn) for column in printer.progress.columns)  # the ETA
    printer.close()


def test_the_headless_figures_fit_the_width_most_needed_first() -> None:
    from gat_tui.console.headless import fit_figures

    event = StepMetrics(epoch=1, step=10, time=1.0, loss_f=1.2345, loss_g=0.5432, pert_l2=1.234, pert_linf=0.1,
                        images_per_second=1.0, train_acc_clean=0.9, train_acc_adv=0.5)
    assert fit_figures(event, 200) == "L_F 1.234 adv 50.0% L_G 0.543 |d|2 1.23 |d|inf 0.100 acc 90.0%"
    assert fit_figures(event, 30) == "L_F 1.234 adv 50.0% L_G 0.543"
    assert fit_figures(event, 12) == "L_F 1.234"


@pytest.mark.asyncio
async def test_an_overlay_legend_shortens_the_run_and_keeps_the_metric() -> None:
    from textual.app import App, ComposeResult

    from gat_tui.dashboard.widgets.metric_chart import MetricChart

    runs = []
    for label in ("synthetic_smoke-20261207-090000/gat", "synthetic_smoke-20261207-090000/baseline"):
        series = RunSeries()
        series.add_step(StepMetrics(epoch=1, step=10, time=1.0, loss_f=1.0, loss_g=0.5, pert_l2=None, pert_linf=None,
                                    images_per_second=1.0))
        runs.append((label, series))

    class ChartApp(App[None]):
        def compose(self) -> ComposeResult:
            yield MetricChart("losses", ("loss_f", "loss_g"), id="chart")

    app = ChartApp()
    async with app.run_test(size=(40, 20)) as pilot:
        chart = app.query_one(MetricChart)
        chart.show(runs, "step", 0.0)
        await pilot.pause()
        legend = chart.legend_plain
        # every row fits (a wider one is cut at the edge) and each entry keeps its metric, L_F or L_G
        assert all(len(row) <= chart.size.width - 2 for row in legend.splitlines()), legend
        assert legend.count("L_F") == 2 and legend.count("L_G") == 2, legend


@pytest.mark.asyncio
async def test_an_ascii_preview_cut_to_a_small_box_stays_ascii() -> None:
    from textual.app import App, ComposeResult

    from gat_tui.dashboard.widgets.preview_grid import PreviewGrid
    from gat_tui.events import PreviewPanel

    rng = np.random.default_rng(0)
    images = rng.random((2, 3, 16, 16), dtype=np.float32)
    perturbations = (rng.random((2, 3, 16, 16), dtype=np.float32) - 0.5) * 0.1
    names = ["a very long class name", "another long class name"]
    panel = PreviewPanel(1, images, perturbations, np.clip(images + perturbations, 0, 1), [0, 1], [0, 1], [1, 0], names)

    class PanelApp(App[None]):
        def compose(self) -> ComposeResult:
            yield PreviewGrid(False, id="previews")

    app = PanelApp()
    async with app.run_test(size=(40, 12)) as pilot:
        grid = app.query_one(PreviewGrid)
        await pilot.pause()
        grid.show(panel)
        await pilot.pause()
        text = grid.plain_text()
        assert "true  a very" in text  # labels cut to the column, not wrapped
        assert all(ord(character) < 128 for character in text), [c for c in text if ord(c) >= 128]
