"""The Textual application: start screen, training screens, runs screen, help."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App
from textual.binding import Binding

from gat_tui.config import RunConfig
from gat_tui.dashboard.modals import HelpScreen
from gat_tui.dashboard.runs_screen import RunsScreen
from gat_tui.dashboard.start_screen import StartScreen
from gat_tui.dashboard.training_screen import TrainingScreen
from gat_tui.runs.folder import default_runs_dir, new_run_dir
from gat_tui.training.request import TrainingRequest

if TYPE_CHECKING:
    from gat_tui.dashboard.sweep_screen import SweepRequest

EXIT_CODES = {"finished": 0, "stopped": 130, "failed": 1}


def colour_wanted() -> bool:
    """Colour previews unless NO_COLOR is set (https://no-color.org) or GAT_TUI_ASCII asks for ASCII."""
    return not os.environ.get("NO_COLOR") and not os.environ.get("GAT_TUI_ASCII")


class GatTuiApp(App[int]):
    CSS_PATH = "dashboard.tcss"
    TITLE = "gat-tui"
    BINDINGS = [
        Binding("question_mark", "help", "help"),
        Binding("r", "runs", "runs"),
        Binding("ctrl+q", "quit_safely", "quit", priority=True),
    ]

    def __init__(
        self,
        request: TrainingRequest | None = None,
        color: bool | None = None,
        runs_dir: Path | None = None,
        sweep: SweepRequest | None = None,
    ) -> None:
        super().__init__()
        self.request = request
        self.sweep = sweep
        self.color = colour_wanted() if color is None else color
        self.runs_dir = runs_dir

    def on_mount(self) -> None:
        self._stop_on_sigterm()
        self.push_screen(StartScreen())
        if self.request is not None:
            self.push_screen(TrainingScreen(self.request, self.color))
        if self.sweep is not None:
            from gat_tui.dashboard.sweep_screen import SweepScreen

            self.push_screen(SweepScreen(self.sweep))

    def _stop_on_sigterm(self) -> None:
        """SIGTERM (a scheduler's or `kill`'s) quits like ctrl+q: training is checkpointed first."""
        import asyncio
        import signal

        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: self.call_later(self.action_quit_safely))
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not on this platform or not in the main thread (e.g. under a test driver)

    def start_training(self, config: RunConfig, data_dir: Path | None = None) -> None:
        run_dir = new_run_dir(self.runs_dir or default_runs_dir(), config.name)
        self.push_screen(TrainingScreen(TrainingRequest(config, run_dir, data_dir), self.color))

    def resume_run(self, folder: Path) -> None:
        from gat_tui.checkpoints import CheckpointError
        from gat_tui.config import ConfigError
        from gat_tui.training.resume import ResumeError, resume_request

        try:
            request = resume_request(folder)
        except (ResumeError, CheckpointError, ConfigError) as error:
            self.notify(str(error), severity="error", timeout=8)
            return
        self.push_screen(TrainingScreen(request, self.color))

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_runs(self) -> None:
        if not isinstance(self.screen, RunsScreen):
            self.push_screen(RunsScreen(self.runs_dir))

    def training_screens(self) -> list[TrainingScreen]:
        return [screen for screen in self.screen_stack if isinstance(screen, TrainingScreen)]

    async def action_quit_safely(self) -> None:
        """Quit; a training still running is stopped (and so checkpointed) first."""
        for screen in self.training_screens():
            if screen.training and screen.worker is not None:
                screen.request_stop()
                await screen.worker.wait()
        for worker in self.workers:
            if worker.group == "sweep":
                for stacked in self.screen_stack:
                    control = getattr(stacked, "control", None)
                    if control is not None:
                        control.stop.set()
                await worker.wait()
        finished = [s.finished for s in self.training_screens() if s.finished is not None]
        self.exit(EXIT_CODES.get(finished[-1].status, 1) if finished else 0)
