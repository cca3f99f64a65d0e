"""SVG snapshots of the screens at 80×24 and 120×40, on a fixed synthetic state (never a live training).

The training and sweep screens get fixed engine events through their normal handlers, their
workers replaced by nothing; the runs screen lists a pre-made run folder. What depends on time
or on the machine (elapsed, the resource strip, temporary paths) is fixed: paths are relative to
a temporary working folder. Update after a deliberate change with `pytest --snapshot-update`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gat_tui.config import RunConfig, config_to_toml
from gat_tui.dashboard.app import GatTuiApp
from gat_tui.dashboard.messages import EngineEvent
from gat_tui.dashboard.sweep_screen import SweepRequest, SweepScreen, SweepUpdate
from gat_tui.dashboard.training_screen import TrainingScreen
from gat_tui.dashboard.widgets.key_footer import KeyFooter
from gat_tui.dashboard.widgets.preview_grid import PreviewGrid
from gat_tui.dashboard.widgets.resource_strip import ResourceSample, ResourceSampler, ResourceStrip
from gat_tui.dashboard.widgets.run_header import RunHeader
from gat_tui.events import EpochSummary, Event, PreviewPanel, RunFinished, RunStarted, StepMetrics
from gat_tui.training.request import TrainingRequest

SIZES = [(80, 24), (120, 40)]
STEPS_PER_EPOCH = 40
EPOCHS = 2


def fixed_events(run_dir: str) -> list[Event]:
    """A two-epoch run: steps every 4, an epoch summary and a preview panel each epoch, then the end."""
    events: list[Event] = [
        RunStarted(run_dir, "synthetic_smoke", "gat", "cpu", "synthetic", 10, 1280, STEPS_PER_EPOCH, EPOCHS)
    ]
    rng = np.random.default_rng(0)
    images = rng.random((2, 3, 8, 8), dtype=np.float32)
    perturbations = (rng.random((2, 3, 8, 8), dtype=np.float32) - 0.5) * 0.1
    for epoch in range(1, EPOCHS + 1):
        for step in range((epoch - 1) * STEPS_PER_EPOCH + 4, epoch * STEPS_PER_EPOCH + 1, 4):
            t = step / (STEPS_PER_EPOCH * EPOCHS)
            events.append(
                StepMetrics(
                    epoch, step, 0.5 * step, 2.3 - 3.0 * t + 2.0 * t * t + 0.05 * np.sin(step), 0.9 - 0.4 * t, 0.5 + 0.3 * t, 0.05 + 0.02 * t,
                    850.0, 0.2 + 0.6 * t, 0.1 + 0.5 * t,
                )
            )
        events.append(
            EpochSummary(epoch, epoch * STEPS_PER_EPOCH, 20.0 * epoch, 0.55 + 0.2 * epoch, 0.3 + 0.15 * epoch, 0.25 + 0.1 * epoch,
                         0.6 + 0.1 * epoch, 0.06, 0.7 - 0.1 * epoch, True, 20.0)
        )
        events.append(
            PreviewPanel(epoch, images, perturbations, np.clip(images + perturbations, 0, 1), [1, 3], [1, 3], [1, 5],
                         [f"class {i}" for i in range(10)])
        )
    events.append(RunFinished("finished", EPOCHS, EPOCHS * STEPS_PER_EPOCH, 41.0, 2, 0.95, 0.94, 0.61, 0.47))
    return events


@pytest.fixture
def fixed_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Relative paths from a temporary folder, no workers, and a resource strip with fixed figures."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(TrainingScreen, "train", lambda self: None)
    monkeypatch.setattr(SweepScreen, "run_sweep", lambda self: None)
    monkeypatch.setattr(ResourceSampler, "sample", lambda self: ResourceSample(42.0, 512 * 1024**2))
    return tmp_path


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_training_screen(snap_compare: Any, fixed_world: Path, size: tuple[int, int]) -> None:
    run_dir = Path("runs") / "snap-demo"
    config = RunConfig(name="synthetic_smoke", method="gat", device="cpu")
    app = GatTuiApp(TrainingRequest(config, run_dir), color=True, runs_dir=Path("runs"))

    async def feed(pilot: Any) -> None:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        for event in fixed_events(str(run_dir)):
            screen.on_engine_event(EngineEvent(event))
        header = screen.query_one(RunHeader)
        assert header.state.elapsed_seconds() == 41.0  # the RunFinished event's time, whatever the clock
        header.redraw()
        screen.query_one(ResourceStrip).sample()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=feed)


LONG_RUN_NAME = "cifar100_dropout_gat-seed3-20261207-090000"  # 41 characters, as a sweep's or a user's name can be


@pytest.mark.parametrize("size", [(80, 24), (60, 20), (120, 40)], ids=lambda size: f"{size[0]}x{size[1]}")
def test_training_screen_while_running_with_a_long_name(snap_compare: Any, fixed_world: Path, size: tuple[int, int]) -> None:
    """Mid-run: the progress row whole on its own row, a preview triple with labels, the footer's help, stop and quit."""
    run_dir = Path("runs") / LONG_RUN_NAME
    config = RunConfig(name="synthetic_smoke", method="gat", device="cpu")
    app = GatTuiApp(TrainingRequest(config, run_dir), color=True, runs_dir=Path("runs"))

    async def feed(pilot: Any) -> None:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        events = [event for event in fixed_events(str(run_dir)) if not isinstance(event, RunFinished)]
        for event in events[:-12]:  # stopped short of the end: epoch 2, step 36 of 80
            screen.on_engine_event(EngineEvent(event))
        header = screen.query_one(RunHeader)
        header.state.sync(18.0, now=0.0)
        header.state.hold(now=0.0)  # elapsed 00:18 whatever the clock (the ETA follows from it)
        header.redraw()
        screen.query_one(ResourceStrip).sample()
        screen._redraw_if_dirty()
        await pilot.pause()
        plain = header.plain.splitlines()
        assert plain[1].startswith("ep") and plain[1].endswith("running") and "ETA" in plain[1], plain
        footer = " ".join(screen.query_one(KeyFooter).shown_keys)
        assert "? help" in footer and "q stop" in footer and "^q quit" in footer, footer
        grid = screen.query_one(PreviewGrid)
        shown = grid.shown_layout
        assert shown is not None and shown.shown >= 1
        # the captions and at least one triple's rows (8-cell images: 4 rows, as many as its labels) are in sight
        assert grid.region.height >= 2 + 4 and grid.region.bottom <= screen.size.height - 1, grid.region

    assert snap_compare(app, terminal_size=size, run_before=feed)


def test_the_help_opens_at_the_top_at_80x24(snap_compare: Any, fixed_world: Path) -> None:
    assert snap_compare(GatTuiApp(color=True, runs_dir=Path("runs")), terminal_size=(80, 24), press=["question_mark"])


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_start_screen(snap_compare: Any, fixed_world: Path, size: tuple[int, int]) -> None:
    assert snap_compare(GatTuiApp(color=True, runs_dir=Path("runs")), terminal_size=size)


def write_run_folder(folder: Path) -> None:
    """A finished two-epoch run folder as the trainer leaves it (config, metrics, summary), without checkpoints."""
    folder.mkdir(parents=True)
    config = RunConfig(name="synthetic_smoke", method="gat", device="cpu")
    (folder / "config.toml").write_text(config_to_toml(config))
    lines = []
    for event in fixed_events(str(folder)):
        if isinstance(event, StepMetrics):
            lines.append({"event": "step", **{k: v for k, v in vars(event).items()}})
        elif isinstance(event, EpochSummary):
            lines.append({"event": "epoch", **{k: v for k, v in vars(event).items()}})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (folder / "summary.json").write_text(json.dumps({"status": "finished", "test_acc_clean": 0.94}))


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_runs_screen(snap_compare: Any, fixed_world: Path, size: tuple[int, int]) -> None:
    write_run_folder(Path("runs") / "synthetic_smoke-20260101-120000")
    # a sweep's runs, grouped under its heading
    sweep = Path("runs") / "sweeps" / "demo"
    started = time.mktime((2026, 1, 2, 9, 30, 0, 0, 0, -1))  # local time: the same on screen in every time zone
    for label in ("baseline", "gat"):
        write_run_folder(sweep / "runs" / label / "seed-0")
        os.utime(sweep / "runs" / label / "seed-0" / "config.toml", (started, started))  # its start: no stamp in its name
    (sweep / "sweep.toml").write_text('name = "demo"\n')
    assert snap_compare(GatTuiApp(color=True, runs_dir=Path("runs")), terminal_size=size, press=["r"])


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_sweep_screen(snap_compare: Any, fixed_world: Path, tiny_sweep: Any, size: tuple[int, int]) -> None:
    from gat_tui.sweep.plan import load_sweep
    from gat_tui.sweep.runner import SweepProgress

    sweep = load_sweep(tiny_sweep(Path(".")))
    app = GatTuiApp(color=True, runs_dir=Path("runs"), sweep=SweepRequest(sweep, Path("out")))

    async def feed(pilot: Any) -> None:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        screen.on_sweep_update(SweepUpdate(SweepProgress("baseline/seed-0", "finished", 1, 4)))
        screen.on_sweep_update(SweepUpdate(SweepProgress("baseline/seed-1", "running", 1, 4)))
        for event in fixed_events("out/runs/baseline/seed-1")[:-1]:
            screen.on_engine_event(EngineEvent(event))
        screen.redraw_charts()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=feed)


@pytest.mark.asyncio
async def test_the_help_scrolls_with_its_keys_and_the_stop_question_is_short(fixed_world: Path) -> None:
    from textual.containers import VerticalScroll

    from gat_tui.dashboard.modals import ConfirmScreen, HelpScreen

    app = GatTuiApp(color=True, runs_dir=Path("runs"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        body = app.screen.query_one("#help-body", VerticalScroll)
        assert body.scroll_y == 0 and body.max_scroll_y > 0  # opens at the top, taller than the screen
        await pilot.press("pagedown")
        await pilot.pause()
        assert body.scroll_y > 0
        await pilot.press("home")
        await pilot.pause()
        assert body.scroll_y == 0
        await pilot.press("end")
        await pilot.pause()
        assert body.scroll_y == body.max_scroll_y
        await pilot.press("up")
        await pilot.pause()
        assert body.scroll_y == body.max_scroll_y - 1
        await pilot.press("escape")
        app.push_screen(ConfirmScreen("Stop training? A checkpoint is saved first, and the run can be resumed."))
        await pilot.pause()
        assert app.screen.query_one("#dialog").size.height <= 10  # a question and two buttons, not the whole height


@pytest.mark.asyncio
async def test_the_palettes_quit_says_a_training_is_checkpointed_first(fixed_world: Path) -> None:
    app = GatTuiApp(color=True, runs_dir=Path("runs"))
    async with app.run_test(size=(80, 24)):
        quit_command = next(command for command in app.get_system_commands(app.screen) if command.title == "Quit")
        assert "as soon as possible" not in quit_command.help and "checkpointed first" in quit_command.help


def test_a_sweeps_dashboard_prints_its_folder_and_report_command_on_exit(fixed_world: Path, tiny_sweep: Any) -> None:
    from gat_tui.sweep.plan import load_sweep

    sweep = load_sweep(tiny_sweep(Path(".")))
    Path("out").mkdir()
    app = GatTuiApp(color=True, runs_dir=Path("runs"), sweep=SweepRequest(sweep, Path("out")))
    assert app.exit_lines() == ["sweep folder: out", "table:        gat-tui report out"]
