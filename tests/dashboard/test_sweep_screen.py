"""The dashboard's sweep screen on a tiny two-run sweep."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import wait_for
from textual.widgets import DataTable

from gat_tui.dashboard.app import GatTuiApp
from gat_tui.dashboard.sweep_screen import SweepRequest, SweepScreen
from gat_tui.sweep.plan import load_sweep


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
        assert "4 done" in str(screen.query_one("#run-header").render())
