"""The header line of a training run: what runs where, how far, how fast, and its state."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.markup import escape
from textual.widgets import Static


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


@dataclass
class HeaderState:
    run_name: str = ""
    preset: str = ""
    method: str = ""
    device: str = ""
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    total_steps: int = 0
    start_step: int = 0
    images_per_second: float = 0.0
    state: str = "starting"
    started_at: float = 0.0
    ended_at: float | None = None  # set when the run finished, stopped or failed: the clock stops there
    best_val_acc: float | None = None  # the best validation accuracy (clean) so far, and its epoch
    best_epoch: int | None = None

    def note_validation(self, epoch: int, val_acc: float | None) -> None:
        if val_acc is not None and (self.best_val_acc is None or val_acc > self.best_val_acc):
            self.best_val_acc, self.best_epoch = val_acc, epoch

    def end(self) -> None:
        if self.ended_at is None:
            self.ended_at = time.monotonic()

    def elapsed_seconds(self) -> float | None:
        if not self.started_at:
            return None
        return (self.ended_at if self.ended_at is not None else time.monotonic()) - self.started_at

    def eta_seconds(self) -> float | None:
        done = self.step - self.start_step
        if done <= 0 or not self.started_at or self.ended_at is not None:
            return None
        rate = done / max(time.monotonic() - self.started_at, 1e-9)
        return (self.total_steps - self.step) / rate if rate > 0 else None


class RunHeader(Static):
    """Two lines of fixed height: redrawn every second, so an unchanged text costs nothing and a change no layout."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = HeaderState()
        self.text = ""

    def redraw(self) -> None:
        s = self.state
        elapsed = s.elapsed_seconds()
        best = "" if s.best_val_acc is None else f"  best val {100 * s.best_val_acc:.2f}% @ epoch {s.best_epoch}"
        text = (
            f"[b]{escape(s.run_name)}[/b]  {s.method} on {s.device}{best}\n"
            f"epoch {s.epoch}/{s.epochs}  step {s.step}/{s.total_steps}  {s.images_per_second:,.0f} img/s  "
            f"elapsed {_clock(elapsed)}  ETA {_clock(s.eta_seconds())}  [b]{s.state}[/b]"
        )
        if text != self.text:
            self.text = text
            # the height is fixed (two rows): a layout of the whole screen each second would cost training time
            self.update(text, layout=False)
