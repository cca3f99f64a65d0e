"""The headless runner's view of a run: a Rich progress bar with live figures, and log lines.

A subscriber of the engine's events. On a terminal the bar reads `epoch k/N`, the steps, elapsed
and ETA, then as many of the step's figures as the width leaves room for, by priority (`fit_figures`);
it moves with every step (`StepProgress`), its figures change at each step report. When the output
is not a terminal (a log file, CI, a pipe) it prints plain lines instead, never wrapped, one record
per line, each starting with a timestamp (`2026-12-07 09:00:00`), so logs can be grepped and paths
copied whole: one per step report (at most one every `plain_every` seconds), one per epoch, and at the
end the summary, the run folder and the commands to evaluate or resume it (`summary_lines`, the
dashboard's too).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from gat_tui.events import (
    CheckpointSaved,
    EpochSummary,
    Event,
    LogMessage,
    PreviewPanel,
    RunFinished,
    RunStarted,
    StepMetrics,
    StepProgress,
)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def step_line(event: StepMetrics) -> str:
    parts = [f"epoch {event.epoch} step {event.step}", f"loss_f {_fmt(event.loss_f)}"]
    if event.loss_g is not None:
        parts.append(f"loss_g {_fmt(event.loss_g)}")
    if event.pert_l2 is not None:
        parts.append(f"|δ|₂ {_fmt(event.pert_l2, 3)} |δ|∞ {_fmt(event.pert_linf, 3)}")
    parts.append(f"{event.images_per_second:,.0f} img/s")
    return "  ".join(parts)


def epoch_line(event: EpochSummary) -> str:
    best = "  [best]" if event.is_best else ""
    text = (
        f"epoch {event.epoch}: val clean {_pct(event.val_acc_clean)}  own-perturbation {_pct(event.val_acc_adv)}"
        f"  FGM-L2 {_pct(event.val_acc_fgm_l2)}"
    )
    if event.val_acc_pgd is not None:  # the validation PGD of [eval], when it is on
        text += f"  PGD {_pct(event.val_acc_pgd)}"
    if event.val_pert_l2 is not None:
        text += f"  |δ|₂ {_fmt(event.val_pert_l2, 3)}"
    if event.val_loss_g is not None:
        text += f"  L_G {_fmt(event.val_loss_g)}"
    return f"{text}  ({event.epoch_seconds:.1f}s){best}"


def short_figures(event: StepMetrics) -> str:
    """The step's figures in at most about 30 characters, for the progress line."""
    return fit_figures(event, 30)


def fit_figures(event: StepMetrics, width: int) -> str:
    """The step's figures, most needed first (L_F, the accuracy under attack, L_G, the norms, the clean
    accuracy), as many as fit in `width` characters; kept in that order."""
    candidates = [
        ("L_F", _fmt(event.loss_f, 3) if event.loss_f is not None else None),
        ("adv", None if event.train_acc_adv is None else f"{100 * event.train_acc_adv:.1f}%"),
        ("L_G", _fmt(event.loss_g, 3) if event.loss_g is not None else None),
        ("|d|2", _fmt(event.pert_l2, 2) if event.pert_l2 is not None else None),
        ("|d|inf", _fmt(event.pert_linf, 3) if event.pert_linf is not None else None),
        ("acc", None if event.train_acc_clean is None else f"{100 * event.train_acc_clean:.1f}%"),
    ]
    parts: list[str] = []
    for label, value in candidates:
        if value is None:
            continue
        part = f"{label} {value}"
        if len(" ".join([*parts, part])) <= width:
            parts.append(part)
    return " ".join(parts)


def timestamp() -> str:
    """The local time at the head of each plain line."""
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def summary_lines(finished: RunFinished, run_dir: str | Path) -> list[str]:
    """How the run ended, its test accuracies and best epoch, its folder and the commands to go on with it."""
    lines = [f"run {finished.status}: {finished.epochs_done} epochs, {finished.step} steps, {_clock(finished.wall_seconds)}"]
    if finished.test_acc_clean is not None:
        lines.append(
            f"test: clean {_pct(finished.test_acc_clean)}  own perturbation {_pct(finished.test_acc_adv)}"
            f"  FGM-L2 {_pct(finished.test_acc_fgm_l2)}"
            + (f"  PGD {_pct(finished.extra['test_acc_pgd'])}" if finished.extra.get("test_acc_pgd") is not None else "")
        )
    if finished.best_epoch is not None:
        lines.append(f"best epoch {finished.best_epoch} (validation)")
    lines.extend(next_commands(run_dir))
    return lines


def next_commands(run_dir: str | Path) -> list[str]:
    """The run folder and the exact commands to evaluate it and to resume it."""
    return [f"run folder: {run_dir}", f"evaluate:   gat-tui eval {run_dir}", f"resume:     gat-tui resume {run_dir}"]


class HeadlessPrinter:
    """Draws the progress of one run on a Rich console (plain timestamped lines where it is not a terminal)."""

    def __init__(self, console: Console | None = None, plain_every: float = 0.0) -> None:
        self.console = console or output_console()
        self.console_lost = False
        self.run_dir = ""
        self.plain_every = plain_every
        self.last_plain = float("-inf")
        self.epochs = 0
        self.steps_per_epoch = 1
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=12),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[figures]}"),
            console=self.console,
            transient=False,
        )
        self.task: TaskID | None = None
        self.started = False

    def line(self, text: str, style: str = "") -> None:
        """One record: on a terminal as it is; elsewhere after a timestamp, never wrapped."""
        if not self.console.is_terminal:
            text = f"{timestamp()} {text}"
        self.console.print(text, style=style, highlight=False, soft_wrap=True, markup=False)

    def __call__(self, event: Event) -> None:
        """Show one event; a console that fails (a closed pipe, a full disk, an encoding) is given up, never the run."""
        if self.console_lost:
            return
        try:
            self._show(event)
        except (OSError, UnicodeError) as error:
            self._lose_console(error)

    def _lose_console(self, error: BaseException) -> None:
        """Stop writing to the console for the rest of the run: the run folder keeps the record."""
        self.console_lost = True
        self.task = None  # the bar's refresh thread must not write either
        try:
            self.progress.live.stop()
        except (OSError, UnicodeError):
            pass
        broken = self.console.file
        self.console.file = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (the console's for the rest of the process)
        if broken is sys.stdout:
            # the interpreter flushes stdout once more at exit: that flush must not fail the run either
            with contextlib.suppress(OSError, ValueError):
                os.dup2(self.console.file.fileno(), sys.stdout.fileno())
        where = f"; its record is in {self.run_dir}" if self.run_dir else ""
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(
                f"warning: the console's output failed ({type(error).__name__}: {error}); "
                f"training goes on without it{where}\n"
            )
            sys.stderr.flush()

    def _show(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._started(event)
        elif isinstance(event, StepProgress):
            if self.task is not None:  # every step (at most ten times a second): the bar never looks hung
                self.progress.update(self.task, completed=event.step, description=self._epoch_text(event.epoch))
        elif isinstance(event, StepMetrics):
            if self.task is not None:
                self.progress.update(
                    self.task, completed=event.step, description=self._epoch_text(event.epoch), figures=self._figures(event)
                )
            if not self.console.is_terminal and time.monotonic() - self.last_plain >= self.plain_every:
                self.last_plain = time.monotonic()
                self.line(step_line(event))
        elif isinstance(event, EpochSummary):
            self.line(epoch_line(event))
        elif isinstance(event, LogMessage):
            style = {"warning": "yellow", "error": "bold red"}.get(event.level, "")
            self.line(f"{event.level}: {event.text}", style=style)
        elif isinstance(event, CheckpointSaved):
            if event.reason != "epoch":
                self.line(f"checkpoint ({event.reason}): {event.path}", style="dim")
        elif isinstance(event, RunFinished):
            self._finished(event)
        elif isinstance(event, PreviewPanel):
            pass  # previews are for the dashboard

    def _epoch_text(self, epoch: int) -> str:
        return f"epoch {epoch}/{self.epochs}"

    def _figures(self, event: StepMetrics) -> str:
        """As many figures as the bar leaves room for: the epoch, bar, steps, elapsed and ETA take the rest."""
        total = self.steps_per_epoch * self.epochs
        fixed = len(self._epoch_text(self.epochs)) + 1 + 12 + 1 + 2 * len(str(total)) + 2 + 7 + 1 + 7 + 1
        return fit_figures(event, max(12, self.console.width - fixed - 1))

    def _started(self, event: RunStarted) -> None:
        self.started = True
        self.run_dir = event.run_dir
        self.epochs, self.steps_per_epoch = event.epochs, max(1, event.steps_per_epoch)
        self.line(
            f"{event.preset}: method {event.method} on {event.dataset} "
            f"({event.train_images} training images, {event.num_classes} classes), device {event.device}"
        )
        self.line(f"run folder: {event.run_dir}")
        total = event.steps_per_epoch * event.epochs
        if self.console.is_terminal:
            self.progress.start()
            self.task = self.progress.add_task(self._epoch_text(event.start_epoch), total=total, completed=event.start_step, figures="")

    def _finished(self, event: RunFinished) -> None:
        if self.task is not None:
            self.progress.stop()
            self.task = None
        if not self.started:
            return  # it failed before training began: the error line says all there is
        if not self.console.is_terminal:
            for text in summary_lines(event, self.run_dir):  # a record a line, the paths whole
                self.line(text)
            return
        table = Table(title=f"run {event.status}", show_header=False)
        table.add_row("epochs done", str(event.epochs_done))
        table.add_row("steps", str(event.step))
        table.add_row("wall time", f"{event.wall_seconds:.1f} s")
        if event.best_epoch is not None:
            table.add_row("best epoch (validation)", f"{event.best_epoch}")
        if event.test_acc_clean is not None:
            table.add_row("test accuracy, clean", _pct(event.test_acc_clean))
            table.add_row("test accuracy, own perturbation", _pct(event.test_acc_adv))
            table.add_row("test accuracy, FGM-L2", _pct(event.test_acc_fgm_l2))
            if event.extra.get("test_acc_pgd") is not None:  # the validation PGD of [eval], on the test images
                table.add_row("test accuracy, PGD", _pct(event.extra["test_acc_pgd"]))
        self.console.print(table)
        for line in next_commands(self.run_dir):
            self.line(line)

    def close(self) -> None:
        if self.task is not None:
            self.task = None
            try:
                self.progress.stop()
            except (OSError, UnicodeError) as error:
                self._lose_console(error)


def output_console(file: TextIO | None = None) -> Console:
    """The console a headless run or sweep prints on: standard output (or `file`), never failing on a
    character its encoding lacks, and raising BrokenPipeError for a closed pipe (Rich's default exits)."""
    return _RunConsole(file=_tolerant(file if file is not None else sys.stdout), soft_wrap=True)


class _RunConsole(Console):
    """A console whose closed pipe is an error for the printer to handle: Rich's default exits the process."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError("the reader of standard output has gone")


def _tolerant(stream: TextIO) -> TextIO:
    """`stream`, writing characters its encoding lacks (δ, ━ under PYTHONIOENCODING=ascii) as '?' rather than failing."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        with contextlib.suppress(ValueError, OSError):
            reconfigure(errors="replace")
    return stream
