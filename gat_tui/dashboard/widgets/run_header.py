"""The header of a training run: what runs where on its first row, how far and how fast on its second.

The second row (`epoch k/N  step  img/s  elapsed  ETA  state`) is never wrapped or cut at any
width from 60 columns: it takes the longest of its forms that fits (`progress_forms`). The first
row shortens a long run name in the middle (`middle_ellipsis`), so its date stamp stays readable.

The clock is the run's training time: it starts from the time a resumed run had trained before,
follows the engine's own figure at each step report, and stands still while paused.
"""

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


def middle_ellipsis(text: str, width: int) -> str:
    """`text` in at most `width` characters, its middle replaced by `…` if it is longer (both ends stay)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    keep = width - 1
    head = (keep + 1) // 2
    return text[:head] + "…" + text[len(text) - (keep - head) :]


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
    # the clock: `clock_base` seconds of training at monotonic time `clock_at`, ticking or standing still
    clock_base: float = 0.0
    clock_at: float | None = None  # None before the run has started
    ticking: bool = False
    start_seconds: float = 0.0  # the training time this session began at (a resumed run's earlier time)
    ended: bool = False
    best_val_acc: float | None = None  # the best validation accuracy (clean) so far, and its epoch
    best_epoch: int | None = None

    def note_validation(self, epoch: int, val_acc: float | None) -> None:
        if val_acc is not None and (self.best_val_acc is None or val_acc > self.best_val_acc):
            self.best_val_acc, self.best_epoch = val_acc, epoch

    def start(self, seconds_before: float, now: float | None = None) -> None:
        """The run has started, after `seconds_before` seconds of training in earlier sessions (0 for a new run)."""
        self.clock_base = self.start_seconds = seconds_before
        self.clock_at = time.monotonic() if now is None else now
        self.ticking = True

    def sync(self, training_seconds: float, now: float | None = None) -> None:
        """The engine's own training time at a step report: the clock follows it (it leaves pauses out too)."""
        if self.clock_at is None:
            return
        self.clock_base, self.clock_at = training_seconds, time.monotonic() if now is None else now

    def hold(self, now: float | None = None) -> None:
        """Paused or ended: the clock stands still at the time reached."""
        now = time.monotonic() if now is None else now
        seconds = self.elapsed_seconds(now)
        if seconds is not None:
            self.clock_base, self.clock_at = seconds, now
        self.ticking = False

    def resume(self, now: float | None = None) -> None:
        if self.clock_at is not None:
            self.clock_at, self.ticking = time.monotonic() if now is None else now, True

    def end(self, now: float | None = None) -> None:
        """Finished, stopped or failed: the clock stops there, and there is no ETA."""
        self.hold(now)
        self.ended = True

    def elapsed_seconds(self, now: float | None = None) -> float | None:
        if self.clock_at is None:
            return None
        if not self.ticking:
            return self.clock_base
        return self.clock_base + (time.monotonic() if now is None else now) - self.clock_at

    def eta_seconds(self, now: float | None = None) -> float | None:
        """The steps left at this session's rate over its training time (pauses left out); None when unknown or ended."""
        done = self.step - self.start_step
        elapsed = self.elapsed_seconds(now)
        if done <= 0 or elapsed is None or self.ended:
            return None
        seconds = elapsed - self.start_seconds
        if seconds <= 0:
            return None
        return (self.total_steps - self.step) * seconds / done

    def progress_forms(self, now: float | None = None) -> list[str]:
        """The progress row, from the most spacious form to the tightest; every one has all six fields."""
        elapsed, eta = _clock(self.elapsed_seconds(now)), _clock(self.eta_seconds(now))
        epoch, step = f"{self.epoch}/{self.epochs}", f"{self.step}/{self.total_steps}"
        rate = f"{self.images_per_second:,.0f} img/s"
        return [
            f"epoch {epoch}  step {step}  {rate}  elapsed {elapsed}  ETA {eta}  {self.state}",
            f"epoch {epoch} step {step} {rate} elapsed {elapsed} ETA {eta} {self.state}",
            f"epoch {epoch} step {step} {rate} {elapsed} ETA {eta} {self.state}",
            f"ep {epoch} step {step} {self.images_per_second:,.0f}/s {elapsed} ETA {eta} {self.state}",
            f"ep {epoch} st {self.step} {self.images_per_second:.0f}/s {elapsed} ETA {eta} {self.state}",
        ]

    def progress_row(self, width: int, now: float | None = None) -> str:
        """The longest progress form of at most `width` characters (the tightest if none is)."""
        forms = self.progress_forms(now)
        return next((form for form in forms if len(form) <= width), forms[-1])

    def title_row(self, width: int) -> tuple[str, str]:
        """(run name, the rest) for the first row in `width` characters: the rest shortened first, then the name."""
        best = "" if self.best_val_acc is None else f"  best val {100 * self.best_val_acc:.2f}% @ epoch {self.best_epoch}"
        where = f"{self.method} on {self.device}" if self.device else self.method  # no device before the run starts
        for rest in (f"  {where}{best}", f"  {where}", f"  {self.method}", ""):
            if len(self.run_name) + len(rest) <= width:
                return self.run_name, rest
        rest = f"  {self.method}" if width - len(f"  {self.method}") >= 24 else ""
        return middle_ellipsis(self.run_name, width - len(rest)), rest


class RunHeader(Static):
    """Two rows of fixed height, each fitted to the width (never wrapped): redrawn every second, so an
    unchanged text costs nothing and a change no layout."""

    DEFAULT_CSS = "RunHeader { text-wrap: nowrap; text-overflow: clip; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = HeaderState()
        self.text = ""
        self.plain = ""  # the two rows without styles (tests read them)

    def on_resize(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        s = self.state
        width = max(20, self.content_size.width or 78)
        name, rest = s.title_row(width)
        progress = s.progress_row(width)
        words = progress.rsplit(" ", 1)
        text = f"[b]{escape(name)}[/b]{escape(rest)}\n{escape(words[0])} [b]{escape(words[-1])}[/b]"
        if text != self.text:
            self.text = text
            self.plain = f"{name}{rest}\n{progress}"
            # the height is fixed (two rows): a layout of the whole screen each second would cost training time
            self.update(text, layout=False)
