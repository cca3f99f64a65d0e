"""The dashboard driven with Textual's pilot: a synthetic run from the start screen to the runs screen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import wait_for
from textual.widgets import DataTable, Input

from gat_tui.dashboard.app import GatTuiApp
from gat_tui.dashboard.previews import render_ascii, render_color, visible_perturbation
from gat_tui.dashboard.runs_screen import RunsScreen
from gat_tui.dashboard.start_screen import StartScreen, overrides_from_form
from gat_tui.dashboard.training_screen import TrainingScreen
from gat_tui.dashboard.widgets.metric_chart import MetricChart
from gat_tui.dashboard.widgets.preview_grid import PreviewGrid
from gat_tui.dashboard.widgets.run_header import RunHeader

# small enough for a 2-core CPU, long enough to pause and stop it on the way
FAST = "data.train_size=1536 data.image_size=12 train.log_every=4 data.batch_size=32"


def start_run(app: GatTuiApp, epochs: str) -> None:
    screen = app.screen
    assert isinstance(screen, StartScreen)
    assert screen.selected()[0].stem == "synthetic_smoke"  # type: ignore[index]
    screen.query_one("#epochs", Input).value = epochs
    screen.query_one("#overrides", Input).value = FAST


@pytest.mark.asyncio
async def test_start_watch_pause_resume_stop_and_find_the_run(tmp_path: Path) -> None:
    app = GatTuiApp(color=True, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 36)) as pilot:
        start_run(app, epochs="20")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainingScreen))
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        header = screen.query_one(RunHeader)

        # the charts receive data
        await wait_for(pilot, lambda: screen.query_one("#chart-losses", MetricChart).points_drawn >= 2)
        await wait_for(pilot, lambda: screen.query_one("#chart-accuracy", MetricChart).points_drawn >= 2)

        # pause and resume
        await pilot.press("p")
        await wait_for(pilot, lambda: header.state.state == "paused")
        paused_at = header.state.step
        await pilot.pause(0.5)
        assert header.state.step == paused_at
        await pilot.press("p")
        await wait_for(pilot, lambda: header.state.state == "running" and header.state.step > paused_at)

        # stop: asks first, then saves a checkpoint
        await pilot.press("q")
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.finished is not None)
        assert screen.finished is not None and screen.finished.status == "stopped"
        run_dir = screen.request.run_dir
        assert (run_dir / "checkpoints" / "last.safetensors").is_file()

        # the runs screen lists it
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count >= 1)
        row = table.get_row_at(0)
        # the run's own name first (six runs of a preset read alike by preset), then its state; the whole folder last
        assert row[1] == run_dir.name and row[2] == "stopped" and row[-1] == str(run_dir)


@pytest.mark.asyncio
async def test_no_color_previews_are_pure_ascii(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = GatTuiApp(runs_dir=tmp_path / "runs")
    assert app.color is False
    async with app.run_test(size=(120, 36)) as pilot:
        start_run(app, epochs="1")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainingScreen))
        grid = app.screen.query_one(PreviewGrid)
        await wait_for(pilot, lambda: grid.panel is not None)
        text = grid.plain_text()
        assert "perturbation" in text and "true" in text
        assert all(ord(character) < 128 for character in text), "a preview used a non-ASCII character"
        await wait_for(pilot, lambda: app.screen.finished is not None)  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_the_start_screen_offers_the_shipped_presets_in_a_folder_without_presets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, presets_dir: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./presets: the package's own, as an installed wheel has them
    app = GatTuiApp(color=False, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)):
        screen = app.screen
        assert isinstance(screen, StartScreen)
        assert [path.stem for path, _, _ in screen.presets] == sorted(path.stem for path in presets_dir.glob("*.toml"))
        assert all(config is not None for _, config, _ in screen.presets)
        assert screen.selected()[0].stem == "synthetic_smoke"  # type: ignore[index]


@pytest.mark.asyncio
async def test_a_bad_override_is_shown_on_the_start_screen(tmp_path: Path) -> None:
    app = GatTuiApp(color=False, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        screen.query_one("#overrides", Input).value = "gat.c_g=-1"
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert isinstance(app.screen, StartScreen)
        assert "'gat.c_g'" in str(screen.query_one("#form-error").render())


def test_form_fields_become_overrides() -> None:
    assert overrides_from_form("3", "", "cpu", "gat.c_g=0.1  train.alpha=0.3") == [
        "train.epochs=3", "device=cpu", "gat.c_g=0.1", "train.alpha=0.3"
    ]
    assert overrides_from_form("", "", "preset", "") == []


def test_half_block_and_ascii_renderings() -> None:
    image = np.zeros((3, 4, 4), dtype=np.float32)
    image[:, :2] = 1.0  # top half white, bottom black
    colour = render_color(image, width=4)
    assert colour.plain == "▀▀▀▀\n▀▀▀▀"
    first = colour.spans[0].style
    assert first.color.triplet.hex == "#ffffff" and first.bgcolor.triplet.hex == "#ffffff"
    assert colour.spans[-1].style.bgcolor.triplet.hex == "#000000"
    ascii_text = render_ascii(image, width=4).plain
    assert ascii_text.splitlines() == ["@@@@", "    "]
    shown, scale = visible_perturbation(np.array([[[-0.2, 0.0, 0.1]]], dtype=np.float32))
    assert scale == pytest.approx(0.2) and shown.min() == 0.0 and shown[0, 0, 1] == pytest.approx(0.5)


@pytest.mark.asyncio
async def test_a_training_error_shows_in_the_dashboard(tmp_path: Path) -> None:
    from dataclasses import replace

    from gat_tui.config import RunConfig
    from gat_tui.training.request import TrainingRequest

    config = replace(RunConfig(name="offline", device="cpu"), data=replace(RunConfig().data, dataset="cifar10"))
    request = TrainingRequest(config, tmp_path / "runs" / "offline", data_dir=tmp_path / "no-data")
    app = GatTuiApp(request, color=False, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, TrainingScreen) and app.screen.finished is not None)
        screen = app.screen
        assert screen.finished.status == "failed"  # type: ignore[union-attr]
        # the log's unwrapped lines: the RichLog wraps a long path differently at every width
        log_text = "\n".join(screen.log_lines)  # type: ignore[attr-defined]
        assert "cifar-10-python.tar.gz" in log_text and "error" in log_text
        assert screen.query_one(RunHeader).state.state == "failed"
        assert app.is_running  # no traceback over the screen: the app carries on


@pytest.mark.asyncio
async def test_chart_keys_readouts_previews_and_the_summary_card(tmp_path: Path) -> None:
    """A two-epoch run: readouts in the legends, l / x / m / [ ] keys, and the summary card at the end."""
    from gat_tui.presets import load_named_preset
    from gat_tui.training.request import TrainingRequest

    _, config = load_named_preset(
        "synthetic_smoke", ["data.train_size=256", "data.image_size=8", "train.log_every=2", "data.batch_size=32", "train.epochs=2", "device='cpu'"]
    )
    app = GatTuiApp(TrainingRequest(config, tmp_path / "runs" / "keys"), color=False, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, TrainingScreen) and app.screen.finished is not None)
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        losses = screen.query_one("#chart-losses", MetricChart)
        accuracy = screen.query_one("#chart-accuracy", MetricChart)
        await wait_for(pilot, lambda: accuracy.points_drawn >= 2)
        # at 80×24 the readouts are compact, `L_F .62 ↓.25@12`, but keep the last value, the best and its step
        assert "L_F" in losses.legend_plain and "↓" in losses.legend_plain and "@" in losses.legend_plain
        assert " val " in accuracy.legend_plain and "↑" in accuracy.legend_plain  # compact: `val 64.8 ↑64.8`
        assert screen.query_one(RunHeader).state.best_val_acc is not None
        # the norms have their own charts
        assert screen.query_one("#chart-linf", MetricChart).points_drawn >= 1
        # x cycles step, epoch, time; m shows its smoothing in the titles; l toggles log y on the focused chart
        await pilot.press("x")
        assert screen.x_axis == "epoch" and "(epoch" in losses.legend_plain
        await pilot.press("x")
        assert screen.x_axis == "time" and "(time" in losses.legend_plain
        await pilot.press("m")
        assert "smooth 0.6" in losses.legend_plain
        accuracy.focus()
        await pilot.press("l")
        assert accuracy.log_y and not losses.log_y and "log" in accuracy.legend_plain
        # two panels kept: [ shows the first, ] goes back to the newest
        grid = screen.query_one(PreviewGrid)
        assert len(grid.panels) == 2 and grid.panel is grid.panels[-1]
        await pilot.press("left_square_bracket")
        assert grid.panel is grid.panels[0] and "epoch 1 (1/2" in grid.plain_text()
        await pilot.press("right_square_bracket")
        assert grid.index is None
        # the summary card and the commands printed on exit
        card = str(screen.query_one("#summary-card").render())
        assert "run finished" in card and "gat-tui resume" in card
        assert any("gat-tui eval" in line for line in app.exit_lines())
