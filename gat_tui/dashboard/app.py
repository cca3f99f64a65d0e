"""The Textual application: start screen, training screens, runs screen, help.

Screens ask the app for what crosses screens (start a training, resume a run) by posting
messages (`StartScreen.Start`, `RunsScreen.Resume`); every way out of the app (ctrl+q,
ctrl+c, the command palette's Quit, SIGTERM, SIGHUP) goes through `action_quit`, which stops a
running training (and so saves its checkpoint) before the app exits.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerCancelled, WorkerFailed

from gat_tui.console.runs_table import is_running, shown_status
from gat_tui.dashboard.modals import HelpScreen
from gat_tui.dashboard.runs_screen import RunsScreen
from gat_tui.dashboard.start_screen import StartScreen
from gat_tui.dashboard.training_screen import TrainingScreen
from gat_tui.events import RunFinished
from gat_tui.runs.folder import default_runs_dir, new_run_dir, remove_if_empty
from gat_tui.runs.index import UnreadableRun, read_run
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
        Binding("ctrl+q", "quit", "quit", priority=True),
        # not a priority binding: in a text field ctrl+c copies, as everywhere in Textual
        Binding("ctrl+c", "quit", "quit", show=False),
    ]

    def __init__(
        self,
        request: TrainingRequest | None = None,
        color: bool | None = None,
        runs_dir: Path | None = None,
        sweep: SweepRequest | None = None,
        exit_on_finish: bool = False,
    ) -> None:
        super().__init__()
        self.request = request
        # for a dashboard nobody watches to the end (`script`, a recorded demo): leave when `request`'s run ends
        self.exit_on_finish = exit_on_finish
        self.sweep = sweep
        self.color = colour_wanted() if color is None else color
        self.runs_dir = runs_dir
        self.created_run_dirs: set[Path] = set()  # made here for a new run: removed again if a failed start left them empty
        self.quitting = False
        self.trained_runs: dict[Path, None] = {}  # the run folders trained in this window, in order, for `exit_lines`

    def on_mount(self) -> None:
        self._quit_on_signals()
        self.push_screen(StartScreen())
        if self.request is not None:
            self.push_screen(TrainingScreen(self.request, self.color))
        if self.sweep is not None:
            from gat_tui.dashboard.sweep_screen import SweepScreen

            self.push_screen(SweepScreen(self.sweep))

    def _quit_on_signals(self) -> None:
        """SIGTERM (a scheduler's or `kill`'s) and SIGHUP (the terminal closed) quit like ctrl+q: training is checkpointed first."""
        import asyncio
        import signal

        loop = asyncio.get_running_loop()
        for name in ("SIGTERM", "SIGHUP"):
            number = getattr(signal, name, None)
            if number is None:
                continue  # no SIGHUP on Windows
            try:
                loop.add_signal_handler(number, lambda: self.call_later(self.action_quit))
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not on this platform or not in the main thread

    # -- what screens ask for ----------------------------------------------------------------

    def on_start_screen_start(self, message: StartScreen.Start) -> None:
        run_dir = new_run_dir(self.runs_dir or default_runs_dir(), message.config.name)
        self.created_run_dirs.add(run_dir)
        self.push_screen(TrainingScreen(TrainingRequest(message.config, run_dir), self.color))

    def on_runs_screen_resume(self, message: RunsScreen.Resume) -> None:
        from gat_tui.checkpoints import CheckpointError
        from gat_tui.config import ConfigError
        from gat_tui.training.resume import ResumeError, resume_request

        folder = message.run_dir
        try:
            record = read_run(folder)
        except UnreadableRun as error:
            self.notify(str(error), severity="error", timeout=8)
            return
        status = shown_status(record, self.training_here()) if record is not None else ""
        if is_running(status):  # checked again here: one writer per run folder, whoever asks
            self.notify(f"{folder.name} is {status}: not resumed, one writer at a time", severity="warning", timeout=8)
            return
        try:
            request = resume_request(folder)
        except (ResumeError, CheckpointError, ConfigError) as error:
            self.notify(str(error), severity="error", timeout=8)
            return
        self.push_screen(TrainingScreen(request, self.color))

    def on_training_screen_ended(self, message: TrainingScreen.Ended) -> None:
        """A run that failed before its first step leaves no empty folder behind (only one this app made)."""
        finished = message.finished
        self.trained_runs[message.run_dir] = None
        if self.exit_on_finish and self.request is not None and message.run_dir == self.request.run_dir:
            self.exit(exit_code(finished))
            return
        if finished is None or finished.status == "failed" and finished.step == 0:
            if message.run_dir in self.created_run_dirs and remove_if_empty(message.run_dir):
                self.created_run_dirs.discard(message.run_dir)
                self.trained_runs.pop(message.run_dir, None)

    def exit_lines(self) -> list[str]:
        """What to print once the app has left the terminal: each trained run's folder and the commands to go on."""
        from gat_tui.console.headless import next_commands

        for screen in self.training_screens():
            self.trained_runs.setdefault(screen.request.run_dir, None)
        lines = [line for run_dir in self.trained_runs if run_dir.is_dir() for line in next_commands(run_dir)]
        if self.sweep is not None and self.sweep.out.is_dir():  # a sweep's folder and its table
            lines += [f"sweep folder: {self.sweep.out}", f"table:        gat-tui report {self.sweep.out}"]
        return lines

    # -- keys and commands -------------------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_runs(self) -> None:
        from gat_tui.dashboard.sweep_screen import SweepScreen

        screen = self.screen
        if isinstance(screen, RunsScreen):
            return
        if isinstance(screen, SweepScreen):
            self.push_screen(RunsScreen(screen.runs_folder, self.training_here, pattern="*/seed-*"))
        else:
            self.push_screen(RunsScreen(self.runs_dir, self.training_here))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title == "Quit":  # Textual's says "as soon as possible"; a training is checkpointed first
                command = SystemCommand("Quit", "Quit; a running training is stopped and checkpointed first (ctrl+q)", self.action_quit)
            yield command
        if isinstance(screen, TrainingScreen):
            yield SystemCommand("Pause / resume", "Pause the training, or resume it (p)", screen.action_pause)
            yield SystemCommand("Save checkpoint", "Save checkpoints/last.safetensors now (s)", screen.action_save)
            yield SystemCommand("Evaluate", "Evaluate on the validation set now (e)", screen.action_evaluate)
            yield SystemCommand("X axis", "Charts over steps, epochs or wall-clock time (x)", screen.action_x_axis)
            yield SystemCommand("Log y", "Log-scale y on the focused chart (l)", screen.action_log_y)
            yield SystemCommand("Smoothing", "Smoothing of step curves: off, 0.6, 0.9 (m)", screen.action_smoothing)
        yield SystemCommand("Runs", "Past and current runs (r)", self.action_runs)

    def training_screens(self) -> list[TrainingScreen]:
        return [screen for screen in self.screen_stack if isinstance(screen, TrainingScreen)]

    def training_here(self) -> set[Path]:
        """The run folders this window trains now."""
        return {screen.request.run_dir for screen in self.training_screens() if screen.training}

    async def action_quit(self) -> None:
        """Quit; a training or sweep still running is stopped (and so checkpointed) first."""
        if self.quitting:
            self.notify("stopping: saving a checkpoint first, then quitting")
            return
        self.quitting = True
        ended: list[RunFinished] = []
        for screen in self.training_screens():
            self.trained_runs.setdefault(screen.request.run_dir, None)
            if screen.training and screen.worker is not None:
                screen.request_stop()
                await _wait_quietly(screen.worker)
            # the worker's result: its RunFinished event may not have reached the screen yet
            result = screen.worker.result if screen.worker is not None else None
            if isinstance(result, RunFinished):
                ended.append(result)
        for worker in self.workers:
            if worker.group == "sweep":
                for stacked in self.screen_stack:
                    control = getattr(stacked, "control", None)
                    if control is not None:
                        control.stop.set()
                await _wait_quietly(worker)
        self.exit(exit_code(ended[-1] if ended else None))


async def _wait_quietly(worker: Worker[Any]) -> None:
    """Wait for a worker to end; how it failed was shown already, by its screen."""
    try:
        await worker.wait()
    except (WorkerFailed, WorkerCancelled):
        pass


def exit_code(finished: RunFinished | None) -> int:
    return EXIT_CODES.get(finished.status, 1) if finished is not None else 0
