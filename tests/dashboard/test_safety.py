"""Never lose or double a run: one writer per run folder, every way out saves first, no empty folders left."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from conftest import wait_for
from textual.widgets import Button, DataTable, Input, OptionList

from gat_tui.config import RunConfig, config_to_toml
from gat_tui.console.runs_table import RUN_COLUMNS
from gat_tui.dashboard.app import GatTuiApp
from gat_tui.dashboard.runs_screen import RunChartsScreen, RunsScreen
from gat_tui.dashboard.start_screen import StartScreen
from gat_tui.dashboard.training_screen import TrainingScreen
from gat_tui.dashboard.widgets.run_header import RunHeader
from gat_tui.presets import load_named_preset
from gat_tui.runs.lock import RunLock
from gat_tui.training.request import TrainingRequest

STATUS = 1 + RUN_COLUMNS.index("status")  # the runs screen's status cell (after the mark column)

FAST = ["data.train_size=1536", "data.image_size=12", "train.log_every=4", "data.batch_size=32"]


def long_request(tmp_path: Path) -> TrainingRequest:
    """A synthetic run long enough to be stopped on the way."""
    _, config = load_named_preset("synthetic_smoke", [*FAST, "train.epochs=20", "device='cpu'"])
    return TrainingRequest(config, tmp_path / "runs" / "long")


def notifications(app: GatTuiApp) -> str:
    return "\n".join(notification.message for notification in app._notifications)


async def start_from_the_form(app: GatTuiApp, pilot: object, epochs: str, extra: str = "") -> TrainingScreen:
    screen = app.screen
    assert isinstance(screen, StartScreen)
    screen.query_one("#epochs", Input).value = epochs
    screen.query_one("#overrides", Input).value = " ".join([*FAST, extra])
    await pilot.press("ctrl+s")  # type: ignore[attr-defined]
    await wait_for(pilot, lambda: isinstance(app.screen, TrainingScreen))
    assert isinstance(app.screen, TrainingScreen)
    return app.screen


def fake_run(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(config_to_toml(RunConfig(name=name)))
    return folder


@pytest.mark.asyncio
async def test_a_live_run_is_not_resumed_a_second_time(tmp_path: Path) -> None:
    app = GatTuiApp(color=False, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await start_from_the_form(app, pilot, epochs="20")
        await wait_for(pilot, lambda: screen.query_one(RunHeader).state.step > 0)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        assert table.get_row_at(0)[STATUS] == "running (this window)"
        await pilot.press("u")
        await pilot.pause(0.3)
        assert len(app.training_screens()) == 1, "a second trainer resumed the run this window trains"
        assert "running (this window): not resumed" in notifications(app)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.return_value is not None)
    assert app.return_value == 130
    assert json.loads((screen.request.run_dir / "summary.json").read_text())["status"] == "stopped"


@pytest.mark.asyncio
async def test_a_locked_run_shows_running_refuses_resume_and_enter_opens_a_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    locked = fake_run(runs / "locked", "held")
    fake_run(runs / "free", "free")
    app = GatTuiApp(color=False, runs_dir=runs)
    with RunLock(locked):  # another process's trainer, as far as the dashboard can tell
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("r")
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
            runs_screen = app.screen
            assert isinstance(runs_screen, RunsScreen)
            table = runs_screen.query_one(DataTable)
            await wait_for(pilot, lambda: table.row_count == 2)
            rows = {Path(table.get_row_at(i)[-1]).name: i for i in range(2)}
            assert table.get_row_at(rows["locked"])[STATUS] == "running"

            table.move_cursor(row=rows["locked"])
            await pilot.press("u")
            await pilot.pause(0.2)
            assert "locked is running: not resumed" in notifications(app)
            assert not app.training_screens()

            table.move_cursor(row=rows["free"])
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, RunChartsScreen))
            assert [record.folder.name for record in app.screen.records] == ["free"]  # type: ignore[attr-defined]


@pytest.mark.asyncio
@pytest.mark.parametrize("way_out", ["palette", "ctrl+c", "sighup"])
async def test_every_way_out_stops_and_saves_the_training_first(tmp_path: Path, way_out: str) -> None:
    request = long_request(tmp_path)
    app = GatTuiApp(request, color=False, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, TrainingScreen))
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        await wait_for(pilot, lambda: screen.query_one(RunHeader).state.step >= 8)
        if way_out == "palette":
            await pilot.press("ctrl+p")
            await pilot.press(*"quit")
            await pilot.pause(0.5)
            await pilot.press("enter")
        elif way_out == "ctrl+c":
            await pilot.press("ctrl+c")
        else:
            assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, None), "no SIGHUP handler installed"
            os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(pilot, lambda: app.return_value is not None)
    assert app.return_value == 130
    assert (request.run_dir / "checkpoints" / "last.safetensors").is_file()
    assert json.loads((request.run_dir / "summary.json").read_text())["status"] == "stopped"


@pytest.mark.asyncio
async def test_the_start_form_fits_80x24_and_a_preset_click_keeps_the_focus(tmp_path: Path) -> None:
    app = GatTuiApp(color=False, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await pilot.click(OptionList, offset=(4, 2))
        await pilot.pause(0.1)
        assert isinstance(screen.focused, OptionList)
        await pilot.press("tab")
        assert screen.focused is screen.query_one("#epochs", Input)

        button = screen.query_one("#start", Button)
        button.focus()
        await pilot.pause(0.3)  # the form scrolls the button into sight
        assert button.region.height > 0 and button.region.bottom <= 24

        screen.query_one("#overrides", Input).value = "gat.c_g=-1"
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        error = screen.query_one("#form-error")
        assert "'gat.c_g'" in str(error.render())
        assert error.region.height > 0 and error.region.bottom <= 24


@pytest.mark.asyncio
async def test_pause_save_says_now_and_an_ended_run_stops_its_clock(tmp_path: Path) -> None:
    app = GatTuiApp(long_request(tmp_path), color=False, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, TrainingScreen))
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        header = screen.query_one(RunHeader)
        await wait_for(pilot, lambda: header.state.step > 0)
        await pilot.press("p")
        await wait_for(pilot, lambda: header.state.state == "paused")
        await pilot.press("s")
        assert "saving a checkpoint now (paused)…" in screen.log_lines
        await wait_for(pilot, lambda: any(line.startswith("checkpoint (asked)") for line in screen.log_lines))

        titles = {command.title for command in app.get_system_commands(screen)}
        assert {"Pause / resume", "Save checkpoint", "Evaluate", "X axis", "Smoothing", "Runs"} <= titles

        await pilot.press("q", "y")
        await wait_for(pilot, lambda: screen.finished is not None)
        header.redraw()
        before = str(header.render())
        assert "ETA --:--" in before
        await pilot.pause(1.2)
        header.redraw()
        assert str(header.render()) == before, "the clock of a stopped run kept running"


@pytest.mark.asyncio
async def test_a_run_that_fails_before_its_first_step_leaves_no_empty_folder(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    app = GatTuiApp(color=False, runs_dir=runs)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await start_from_the_form(app, pilot, epochs="1", extra="data.dataset='cifar10' data.image_size=32 data.num_classes=10")
        await wait_for(pilot, lambda: screen.finished is not None)
        assert screen.finished is not None and screen.finished.status == "failed"
        await wait_for(pilot, lambda: not any(runs.iterdir()))
