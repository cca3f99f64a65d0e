"""The live view of one training run: header, resources, charts, previews, log; keys steer the engine.

The trainer runs in a thread worker and only talks to this screen through events posted as
messages; the screen steers it through a `TrainingControl`. Charts are redrawn at most twice a
second, however often events arrive, so drawing never slows training down much.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.message import Message
from textual.widgets import RichLog, Static
from textual.worker import Worker, WorkerState

from gat_tui.console.headless import summary_lines
from gat_tui.dashboard.messages import EngineEvent
from gat_tui.dashboard.modals import ConfirmScreen
from gat_tui.dashboard.series import X_AXES, RunSeries
from gat_tui.dashboard.widgets.key_footer import KeyFooter
from gat_tui.dashboard.widgets.metric_chart import MetricChart
from gat_tui.dashboard.widgets.preview_grid import PreviewGrid
from gat_tui.dashboard.widgets.resource_strip import ResourceStrip
from gat_tui.dashboard.widgets.run_header import RunHeader
from gat_tui.dashboard.workers import WorkerScreen
from gat_tui.events import (
    CheckpointSaved,
    EpochSummary,
    EvaluationDone,
    Event,
    LogMessage,
    PauseChanged,
    PreviewPanel,
    RunFinished,
    RunStarted,
    StepMetrics,
    StepProgress,
)
from gat_tui.runs.folder import RunPaths
from gat_tui.runs.panels import saved_panels
from gat_tui.training.control import TrainingControl
from gat_tui.training.request import TrainingRequest

SMOOTHING_STEPS = (0.0, 0.6, 0.9)
# the charts of a training run: (id, title, figures); each norm has its own y-axis
CHARTS = (
    ("chart-losses", "losses", ("loss_f", "loss_g")),
    ("chart-l2", "‖δ‖₂", ("pert_l2", "val_pert_l2")),
    ("chart-linf", "‖δ‖∞", ("pert_linf", "val_pert_linf")),
    ("chart-accuracy", "accuracy", ("train_acc_clean", "train_acc_adv", "val_acc_clean", "val_acc_adv", "val_acc_fgm_l2", "val_acc_pgd")),
)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _pgd(value: float | None) -> str:
    """The validation PGD figure for a log line, nothing when it is off."""
    return "" if value is None else f", PGD {_pct(value)}"


class TrainingScreen(WorkerScreen):
    class Ended(Message):
        """The training of `run_dir` is over: how it ended (`finished`), or None when its worker raised."""

        def __init__(self, run_dir: Path, finished: RunFinished | None) -> None:
            super().__init__()
            self.run_dir = run_dir
            self.finished = finished

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (160, "-wide")]  # four charts in a row only where each gets ~40 columns
    # under 36 rows (80×24) the charts show two at a time (g switches), so the previews get room
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]
    BINDINGS = [
        Binding("p", "pause", "pause"),
        Binding("s", "save", "save"),
        Binding("e", "evaluate", "evaluate"),
        Binding("q", "stop", "stop"),
        Binding("g", "chart_pair", "charts"),
        Binding("x", "x_axis", "axis"),
        Binding("m", "smoothing", "smoothing"),
        Binding("l", "log_y", "log y"),
        Binding("left_square_bracket", "preview(-1)", "earlier panel", show=False),
        Binding("right_square_bracket", "preview(1)", "later panel", show=False),
        Binding("c", "colour", "colour/ASCII", show=False),
    ]

    def __init__(self, request: TrainingRequest, color: bool) -> None:
        super().__init__()
        self.request = request
        self.color = color
        self.control = TrainingControl()
        self.series = RunSeries()
        self.x_axis = "step"
        self.smoothing_index = 0
        self.dirty = False
        self.finished: RunFinished | None = None
        self.worker: Worker[RunFinished] | None = None
        self.log_lines: list[str] = []  # the log's plain text, unwrapped (the RichLog wraps to its width)
        self.chart_pair = 0  # on a short screen, the pair of charts shown: 0 losses and ‖δ‖₂, 1 ‖δ‖∞ and accuracy

    def compose(self) -> ComposeResult:
        yield RunHeader(id="run-header")
        yield ResourceStrip(id="resources", interval=None)  # sampled by `_tick`
        with Grid(id="charts"):
            for index, (chart_id, title, names) in enumerate(CHARTS):
                yield MetricChart(title, names, id=chart_id, color=self.color, classes=f"pair-{index // 2}")
        with Horizontal(id="lower"):
            with Vertical(id="preview-box"):
                yield PreviewGrid(self.color, id="previews", run_dir=self.request.run_dir)
            with Vertical(id="side"):
                yield RichLog(id="log", wrap=True, markup=True, max_lines=500, min_width=20)
        yield Static(id="summary-card")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.add_class("-pair-0")
        header = self.query_one(RunHeader)
        config = self.request.config
        header.state.run_name = self.request.run_dir.name
        header.state.preset = config.name
        header.state.method = config.method
        header.state.epochs = config.train.epochs
        header.redraw()
        self.set_interval(0.5, self._redraw_if_dirty)
        self.set_interval(1.0, self._tick)
        self.worker = self.train()

    # -- the worker --------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="training", name="training")
    def train(self) -> RunFinished:
        from gat_tui.training.trainer import Trainer

        trainer = Trainer(self.request, subscribers=[self._forward], control=self.control)
        return trainer.run()

    def _forward(self, event: Event) -> None:
        # runs in the training thread; post_message is thread-safe
        self.post_message(EngineEvent(event))

    def show_worker_error(self, worker: Worker[Any], text: str) -> None:
        if worker is not self.worker:
            self.log_line(f"[red]{escape(text)}[/red]")
            return
        header = self.query_one(RunHeader)
        header.state.state = "failed"
        header.state.end()
        header.redraw()
        self.log_line(f"[red]{escape(text)}[/red] (the run folder keeps its last checkpoint)")

    def worker_ended(self, worker: Worker[Any]) -> None:
        if worker is self.worker:  # posted once the trainer has let go of the run folder
            result = worker.result if worker.state == WorkerState.SUCCESS else None
            self.post_message(self.Ended(self.request.run_dir, result))

    # -- events from the engine --------------------------------------------------------------

    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        header = self.query_one(RunHeader)
        state = header.state
        if isinstance(event, RunStarted):
            state.device, state.total_steps, state.epochs = event.device, event.steps_per_epoch * event.epochs, event.epochs
            state.step = state.start_step = event.start_step
            state.epoch, state.state = event.start_epoch, "running"
            state.start(event.start_seconds)  # a resumed run's clock goes on from its training time so far
            self.query_one(ResourceStrip).set_device(event.device)
            self.log_line(f"run folder: {escape(event.run_dir)}")
            if event.start_step > 0:
                self.load_history(event.start_step)
                # the panels of the epochs before the checkpoint, from the run folder: [ steps back to them
                saved = [(epoch, path) for epoch, path in saved_panels(self.request.run_dir) if epoch < event.start_epoch]
                self.query_one(PreviewGrid).add_saved(saved)
        elif isinstance(event, StepProgress):
            state.step, state.epoch = event.step, event.epoch  # the header counts every step, not only reports
        elif isinstance(event, StepMetrics):
            self.series.add_step(event)
            state.step, state.epoch, state.images_per_second = event.step, event.epoch, event.images_per_second
            state.sync(event.time)
            self.dirty = True
        elif isinstance(event, EpochSummary):
            self.series.add_epoch(event)
            state.note_validation(event.epoch, event.val_acc_clean)
            self.dirty = True
            best = " [b]best[/b]" if event.is_best else ""
            self.log_line(
                f"epoch {event.epoch}: val clean {_pct(event.val_acc_clean)}, own perturbation "
                f"{_pct(event.val_acc_adv)}, FGM-L2 {_pct(event.val_acc_fgm_l2)}{_pgd(event.val_acc_pgd)}{best}"
            )
        elif isinstance(event, PreviewPanel):
            self.query_one(PreviewGrid).show(event)
        elif isinstance(event, EvaluationDone):
            self.log_line(
                f"evaluation at step {event.step}: val clean {_pct(event.val_acc_clean)}, own perturbation "
                f"{_pct(event.val_acc_adv)}, FGM-L2 {_pct(event.val_acc_fgm_l2)}{_pgd(event.val_acc_pgd)}"
            )
        elif isinstance(event, PauseChanged):
            state.state = "paused" if event.paused else "running"
            if event.paused:
                state.hold()  # elapsed stands still while paused
            else:
                state.resume()
            self.log_line("paused" if event.paused else "resumed")
        elif isinstance(event, CheckpointSaved):
            if event.reason != "epoch":
                self.log_line(f"checkpoint ({event.reason}): {event.path}")
        elif isinstance(event, LogMessage):
            colour = {"warning": "yellow", "error": "red"}.get(event.level)
            text = escape(event.text)  # engine text may hold brackets, e.g. [Errno 2]
            self.log_line(f"[{colour}]{event.level}: {text}[/{colour}]" if colour else text)
        elif isinstance(event, RunFinished):
            self.finished = event
            state.state = event.status
            state.end()  # elapsed stops, no ETA
            state.clock_base = event.wall_seconds  # the engine's own total
            summary = f"run {event.status}: {event.epochs_done} epochs, {event.step} steps"
            if event.test_acc_clean is not None:
                summary += f"; test clean {_pct(event.test_acc_clean)}, own perturbation {_pct(event.test_acc_adv)}, FGM-L2 {_pct(event.test_acc_fgm_l2)}"
            self.log_line(summary)
            self.dirty = True
            self._redraw_if_dirty()
            self.show_summary(event)
        header.redraw()

    def load_history(self, start_step: int) -> None:
        """A resumed run: its curves up to the checkpoint, read from metrics.jsonl, go before the new events."""
        history = RunSeries.from_metrics_file(RunPaths(self.request.run_dir).metrics, up_to_step=start_step)
        self.series.prepend(history)
        state = self.query_one(RunHeader).state
        for epoch, _, _, value in history.points_by_name.get("val_acc_clean", []):
            state.note_validation(epoch, value)
        count = sum(len(points) for points in history.points_by_name.values())
        self.log_line(f"resumed at step {start_step}: {count} earlier points from metrics.jsonl in the charts")
        self.dirty = True

    def show_summary(self, finished: RunFinished) -> None:
        """The run is over: a toast, the bell if asked for (GAT_TUI_BELL=1), and a summary card."""
        severity = {"finished": "information", "stopped": "warning"}.get(finished.status, "error")
        self.notify(f"run {finished.status}: {self.request.run_dir.name}", severity=severity, timeout=10)  # type: ignore[arg-type]
        if os.environ.get("GAT_TUI_BELL"):
            self.app.bell()
        card = self.query_one("#summary-card", Static)
        card.update("\n".join(summary_lines(finished, self.request.run_dir)))
        card.add_class("-shown")
        self.add_class("-ended")  # on a short screen the card takes the previews' and log's place

    def log_line(self, text: str) -> None:
        self.log_lines.append(Text.from_markup(text).plain)
        del self.log_lines[:-500]
        self.query_one("#log", RichLog).write(text)

    def _tick(self) -> None:
        # the clock and the resource strip change together: one timer makes them one screen
        # update a second, not two (on a CPU each update's work is taken from training)
        self.query_one(RunHeader).redraw()
        self.query_one(ResourceStrip).sample()

    def _redraw_if_dirty(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        smoothing = SMOOTHING_STEPS[self.smoothing_index]
        for chart in self.query(MetricChart):
            chart.show([(self.request.run_dir.name, self.series)], self.x_axis, smoothing)

    # -- keys --------------------------------------------------------------------------------

    @property
    def training(self) -> bool:
        return self.worker is not None and self.worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    def action_pause(self) -> None:
        if not self.training:
            return
        if self.control.pause.is_set():
            self.control.pause.clear()
        else:
            self.control.pause.set()
            self.query_one(RunHeader).state.state = "pausing"
            self.query_one(RunHeader).redraw()

    @property
    def paused(self) -> bool:
        return self.query_one(RunHeader).state.state == "paused"

    def action_save(self) -> None:
        if self.training:
            self.control.save_now.set()
            self.log_line("saving a checkpoint now (paused)…" if self.paused else "saving a checkpoint at the next step…")

    def action_evaluate(self) -> None:
        if self.training:
            self.control.evaluate_now.set()
            when = "now (paused)" if self.paused else "at the next step"
            self.log_line(f"evaluating on the validation set {when}…")

    def action_stop(self) -> None:
        if not self.training:
            if len(self.app.screen_stack) > 2:
                self.app.pop_screen()  # a finished run's screen: q goes back
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.request_stop()

        self.app.push_screen(ConfirmScreen("Stop training? A checkpoint is saved first, and the run can be resumed."), answered)

    def request_stop(self) -> None:
        self.control.stop.set()
        header = self.query_one(RunHeader)
        header.state.state = "stopping"
        header.redraw()

    def action_chart_pair(self) -> None:
        """On a short screen (two charts at a time), show the other pair; the focus, if on a chart, follows."""
        self.show_chart_pair(1 - self.chart_pair)
        if isinstance(self.focused, MetricChart):
            self.query_one(f"#{CHARTS[2 * self.chart_pair][0]}", MetricChart).focus()

    def show_chart_pair(self, pair: int) -> None:
        self.remove_class(f"-pair-{self.chart_pair}")
        self.chart_pair = pair
        self.add_class(f"-pair-{pair}")

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        # a chart of the hidden pair given the focus (by a command or a click in a test) is shown
        if isinstance(event.widget, MetricChart) and event.widget.has_class(f"pair-{1 - self.chart_pair}"):
            self.show_chart_pair(1 - self.chart_pair)

    def action_x_axis(self) -> None:
        self.x_axis = X_AXES[(X_AXES.index(self.x_axis) + 1) % len(X_AXES)] if self.x_axis in X_AXES else "step"
        self.dirty = True
        self._redraw_if_dirty()

    def action_smoothing(self) -> None:
        self.smoothing_index = (self.smoothing_index + 1) % len(SMOOTHING_STEPS)
        self.log_line(f"smoothing {SMOOTHING_STEPS[self.smoothing_index]} (shown in the chart titles)")
        self.dirty = True
        self._redraw_if_dirty()

    def action_log_y(self) -> None:
        """Log-scale y on the focused chart (tab moves the focus between charts); the losses chart if none has it."""
        chart = self.focused if isinstance(self.focused, MetricChart) else self.query_one("#chart-losses", MetricChart)
        chart.toggle_log_y()

    def action_preview(self, delta: int) -> None:
        """Step through the validation panels of earlier epochs (this session's, and a resumed run's saved ones)."""
        self.query_one(PreviewGrid).step(delta)

    def action_colour(self) -> None:
        grid = self.query_one(PreviewGrid)
        grid.color = not grid.color
        grid.show()
