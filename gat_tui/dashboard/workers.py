"""One way to show a worker's failure, for every screen that runs a worker (training, sweep, evaluation)."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.worker import Worker, WorkerState


class WorkerScreen(Screen[None]):
    """A screen that runs workers: any worker's error is shown in a notification and in `show_worker_error`.

    Worker.StateChanged does not bubble past the screen that owns the worker, so this is the
    one handler for the app's workers.
    """

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            text = f"{event.worker.name or 'a task'} failed: {type(error).__name__}: {error}"
            self.notify(text, severity="error", timeout=10)
            self.show_worker_error(event.worker, text)
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            self.worker_ended(event.worker)

    def show_worker_error(self, worker: Worker[Any], text: str) -> None:
        """Where a screen shows the failure besides the notification (its log, its header)."""

    def worker_ended(self, worker: Worker[Any]) -> None:
        """A worker returned or raised (after show_worker_error)."""
