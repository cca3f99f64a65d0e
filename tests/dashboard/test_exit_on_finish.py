"""`--exit-on-finish`: a dashboard nobody watches (`script -qec 'gat-tui run ...'`) leaves when its run ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import wait_for

from gat_tui.dashboard.app import GatTuiApp
from gat_tui.presets import load_named_preset
from gat_tui.training.request import TrainingRequest

SHORT = ["data.train_size=256", "data.val_size=64", "data.test_size=64", "data.image_size=8", "train.epochs=1", "device='cpu'"]


@pytest.mark.asyncio
async def test_the_dashboard_leaves_when_its_run_finishes_without_a_key(tmp_path: Path) -> None:
    _, config = load_named_preset("synthetic_smoke", SHORT)
    request = TrainingRequest(config, tmp_path / "run")
    app = GatTuiApp(request, color=False, exit_on_finish=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.return_value is not None)  # waited for a key for ever
    assert app.return_value == 0
    assert json.loads((tmp_path / "run/summary.json").read_text())["status"] == "finished"
    assert app.exit_lines()[0] == f"run folder: {tmp_path / 'run'}"


@pytest.mark.asyncio
async def test_without_the_option_the_summary_waits_for_the_user(tmp_path: Path) -> None:
    _, config = load_named_preset("synthetic_smoke", SHORT)
    app = GatTuiApp(TrainingRequest(config, tmp_path / "run"), color=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: (tmp_path / "run/summary.json").is_file())
        await pilot.pause(0.5)
        assert app.return_value is None
        await pilot.press("ctrl+q")
    assert app.return_value == 0
