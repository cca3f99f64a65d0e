"""The dashboard's sweep screen on a tiny two-run sweep."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import wait_for
from textual.widgets import DataTable, RichLog

from gat_tui.dashboard.app import GatTuiApp
from gat_tui.dashboard.runs_screen import RunsScreen
from gat_tui.dashboard.sweep_screen import SweepRequest, SweepScreen
from gat_tui.sweep.plan import load_sweep
from gat_tui.sweep.runner import SweepRunner


@pytest.mark.asyncio
async def test_the_dashboard_shows_a_sweep_filling_in(tmp_path: Path, tiny_sweep: Callable[[Path], Path]) -> None:
    sweep = load_sweep(tiny_sweep(tmp_path), seeds=1)
    app = GatTuiApp(sweep=SweepRequest(sweep, tmp_path / "out"), color=False, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen))
        screen = app.screen
        await wait_for(pilot, lambda: screen.status is not None, timeout=120)  # type: ignore[attr-defined]
        await pilot.pause(0.2)
        assert screen.status == "finished"  # type: ignore[attr-defined]
        table = screen.query_one(DataTable)
        rows = [table.get_row_at(index) for index in range(table.row_count)]
        assert [row[0] for row in rows] == ["baseline", "gat"]
        assert all("(n=1)" in row[1] for row in rows)
        header = str(screen.query_one("#run-header").render())
        assert "4 done" in header and "now: -" in header  # nothing runs any more
        assert "in the folder, all shards: 4 done" in header  # gat-tui sweep --status's source

        # r lists the sweep's own run folders, OUT/runs/<label>/seed-<k>
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        runs = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: runs.row_count == 2)
        folders = sorted(str(runs.get_row_at(index)[-1]) for index in range(2))
        assert folders == [str(tmp_path / "out" / "runs" / label / "seed-0") for label in ("baseline", "gat")]

        # all done: q quits at once, nothing to confirm
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.press("q")
        await wait_for(pilot, lambda: app.return_value is not None)
    assert app.return_value == 0


@pytest.mark.asyncio
async def test_a_sweep_error_is_shown_not_lost(
    tmp_path: Path, tiny_sweep: Callable[[Path], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: SweepRunner) -> str:
        raise RuntimeError("the sweep broke here")

    monkeypatch.setattr(SweepRunner, "run", broken)
    sweep = load_sweep(tiny_sweep(tmp_path), seeds=1)
    app = GatTuiApp(sweep=SweepRequest(sweep, tmp_path / "out"), color=False, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen))
        screen = app.screen
        await wait_for(pilot, lambda: screen.status == "failed")  # type: ignore[attr-defined]
        log = "\n".join(line.text for line in screen.query_one(RichLog).lines)
        assert "sweep failed: RuntimeError" in log  # the log wraps; the notification has it whole
        assert any("sweep failed: RuntimeError: the sweep broke here" in note.message for note in app._notifications)
