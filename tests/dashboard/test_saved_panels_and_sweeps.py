"""Saved validation panels on the training and runs screens, and sweeps grouped on the runs screen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import DataTable

from gat_tui.config import RunConfig, config_to_toml
from gat_tui.dashboard.app import GatTuiApp
from gat_tui.dashboard.messages import EngineEvent
from gat_tui.dashboard.runs_screen import RunChartsScreen, RunPanelsScreen, RunsScreen
from gat_tui.dashboard.series import RunSeries
from gat_tui.dashboard.training_screen import TrainingScreen
from gat_tui.dashboard.widgets.metric_chart import MetricChart
from gat_tui.dashboard.widgets.preview_grid import PreviewGrid, SavedPanel
from gat_tui.events import PreviewPanel, RunStarted, StepMetrics
from gat_tui.runs.panels import write_panel
from gat_tui.training.request import TrainingRequest


def a_panel(epoch: int) -> PreviewPanel:
    rng = np.random.default_rng(epoch)
    images = rng.random((2, 3, 8, 8), dtype=np.float32)
    perturbations = (rng.random((2, 3, 8, 8), dtype=np.float32) - 0.5) * 0.1
    return PreviewPanel(epoch, images, perturbations, np.clip(images + perturbations, 0, 1), [1, 2], [1, 2], [1, 0], ["c0", "c1", "c2"])


def finished_run(folder: Path, name: str = "synthetic_smoke", epochs: int = 2) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(config_to_toml(RunConfig(name=name, method="gat", device="cpu")))
    lines = [{"event": "epoch", "epoch": e, "step": 10 * e, "time": 1.0 * e, "val_acc_clean": 0.5 + 0.1 * e} for e in range(1, epochs + 1)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (folder / "summary.json").write_text(json.dumps({"status": "finished"}))
    return folder


@pytest.mark.asyncio
async def test_a_resumed_runs_screen_steps_back_to_panels_from_before_the_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TrainingScreen, "train", lambda self: None)  # the events below stand in for the trainer
    run_dir = tmp_path / "runs" / "resumed"
    for epoch in (1, 2):  # what the run wrote before it was stopped
        write_panel(run_dir, a_panel(epoch))
    app = GatTuiApp(TrainingRequest(RunConfig(name="synthetic_smoke", method="gat", device="cpu"), run_dir), color=False, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        screen.on_engine_event(EngineEvent(RunStarted(str(run_dir), "synthetic_smoke", "gat", "cpu", "synthetic", 3, 64, 10, 4, start_epoch=3, start_step=20)))
        screen.on_engine_event(EngineEvent(a_panel(3)))
        await pilot.pause()
        grid = screen.query_one(PreviewGrid)
        assert [entry.epoch for entry in grid.panels] == [1, 2, 3]
        assert grid.panel is not None and grid.panel.epoch == 3
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert isinstance(grid.panels[0], SavedPanel)  # read from the run folder, not kept from this session
        assert grid.panel is not None and grid.panel.epoch == 1
        assert "epoch 1 (1/3" in grid.plain_text() and "true  c1" in grid.plain_text()
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert grid.index is None and grid.panel.epoch == 3


@pytest.mark.asyncio
async def test_the_runs_screen_shows_a_runs_saved_panels(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    folder = finished_run(runs / "synthetic_smoke-20260101-120000")
    for epoch in (1, 2):
        write_panel(folder, a_panel(epoch))
    app = GatTuiApp(color=False, runs_dir=runs)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("i")
        await pilot.pause()
        panels = app.screen
        assert isinstance(panels, RunPanelsScreen)
        grid = panels.query_one(PreviewGrid)
        assert "epoch 2 (2/2" in grid.plain_text()
        await pilot.press("left_square_bracket")
        assert "epoch 1 (1/2" in grid.plain_text()
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


def sweep_folder(runs: Path) -> Path:
    """runs/sweeps/demo: two labels, seeds 0, 1 and 10 of one (10 must come after 1, not before)."""
    sweep = runs / "sweeps" / "demo"
    sweep.mkdir(parents=True)
    (sweep / "sweep.toml").write_text('name = "demo"\n')
    for label, seed in (("baseline", 0), ("gat", 10), ("gat", 0), ("gat", 1)):
        finished_run(sweep / "runs" / label / f"seed-{seed}", name=f"preset_{label}")
    return sweep


@pytest.mark.asyncio
async def test_sweep_runs_are_grouped_under_their_sweep(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    finished_run(runs / "synthetic_smoke-20260101-120000")
    sweep = sweep_folder(runs)
    app = GatTuiApp(color=False, runs_dir=runs)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        table = screen.query_one(DataTable)

        def first_cells() -> list[str]:
            return [str(table.get_row_at(row)[1]) for row in range(table.row_count)]

        # the plain run, then the sweep's heading and its runs by label and seed
        assert first_cells() == [
            "synthetic_smoke-20260101-120000", "▾ sweep demo", "  └ baseline/seed-0", "  └ gat/seed-0", "  └ gat/seed-1", "  └ gat/seed-10",
        ]
        assert "4/4 finished" in [str(cell) for cell in table.get_row_at(1)]
        # space on the heading marks all its runs; o overlays them
        table.move_cursor(row=1)
        await pilot.press("space")
        assert screen.marked == {record.folder for record in screen.records if record.folder.is_relative_to(sweep)}
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, RunChartsScreen) and len(app.screen.records) == 4
        await pilot.press("escape")
        # enter on the heading folds the sweep; a run opens its charts
        table.move_cursor(row=1)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        assert first_cells() == ["synthetic_smoke-20260101-120000", "▸ sweep demo"]
        await pilot.press("enter")
        assert len(first_cells()) == 6
        # the filter keeps a sweep's heading over the runs that match
        screen.filter_text = "gat/seed-1"
        screen.action_refresh()
        assert first_cells() == ["▾ sweep demo", "  └ gat/seed-1", "  └ gat/seed-10"]


@pytest.mark.asyncio
async def test_a_chart_is_drawn_again_only_when_its_data_or_view_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Drawing costs the UI thread milliseconds that training shares: a redraw of unchanged data is skipped."""
    monkeypatch.setattr(TrainingScreen, "train", lambda self: None)
    run_dir = tmp_path / "runs" / "r"
    app = GatTuiApp(TrainingRequest(RunConfig(name="synthetic_smoke", method="gat", device="cpu"), run_dir), color=True, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        chart = app.screen.query_one("#chart-losses", MetricChart)
        series = RunSeries()
        series.add_step(StepMetrics(1, 1, 0.1, 2.0, 1.0, 0.5, 0.1, 100.0, 0.5, 0.4))
        chart.show([("r", series)])
        drawn = chart.draws
        chart.show([("r", series)])
        assert chart.draws == drawn  # nothing new
        series.add_step(StepMetrics(1, 2, 0.2, 1.9, 1.0, 0.5, 0.1, 100.0, 0.5, 0.4))
        chart.show([("r", series)])
        assert chart.draws == drawn + 1  # a new point
        chart.show([("r", series)], "epoch")
        assert chart.draws == drawn + 2  # another x-axis


@pytest.mark.asyncio
async def test_the_runs_screen_shows_what_tells_runs_apart_first(tmp_path: Path) -> None:
    """Runs of one preset: the first column is each run's own name, not the preset they share."""
    runs = tmp_path / "runs"
    names = [f"synthetic_smoke-2026010{day}-120000" for day in range(1, 4)]
    for name in names:
        finished_run(runs / name)
    app = GatTuiApp(color=False, runs_dir=runs)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert str(table.ordered_columns[1].label) == "run"
        assert sorted(str(table.get_row_at(row)[1]) for row in range(table.row_count)) == names
        # the name column and the status beside it fit on an 80-column screen
        assert sum(column.get_render_width(table) for column in table.ordered_columns[:3]) <= 80
