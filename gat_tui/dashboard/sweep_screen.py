"""A sweep in the dashboard: jobs done / running / left, Table 2 filling in, live charts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import DataTable, Footer, RichLog, Static
from textual.worker import Worker

from gat_tui.dashboard.messages import EngineEvent
from gat_tui.dashboard.modals import ConfirmScreen
from gat_tui.dashboard.series import RunSeries
from gat_tui.dashboard.widgets.metric_chart import MetricChart
from gat_tui.dashboard.workers import WorkerScreen
from gat_tui.events import EpochSummary, Event, RunStarted, StepMetrics
from gat_tui.sweep.plan import Sweep
from gat_tui.sweep.runner import SweepProgress, SweepRunner
from gat_tui.training.control import TrainingControl


@dataclass(frozen=True)
class SweepRequest:
    sweep: Sweep
    out: Path
    shard: int = 0
    shards: int = 1
    data_dir: Path | None = None


class SweepUpdate(Message):
    """A job of the sweep started or ended."""

    def __init__(self, progress: SweepProgress) -> None:
        super().__init__()
        self.progress = progress


class SweepScreen(WorkerScreen):
    class Done(Message):
        """The sweep's worker returned: finished, stopped or failed."""

        def __init__(self, status: str) -> None:
            super().__init__()
            self.status = status

    BINDINGS = [Binding("q", "stop", "stop sweep / quit")]

    def __init__(self, request: SweepRequest) -> None:
        super().__init__()
        self.request = request
        self.control = TrainingControl()
        self.series = RunSeries()
        self.current = ""
        self.status: str | None = None
        self.counts = {"finished": 0, "skipped": 0, "failed": 0}
        self.done_total = (0, 0)
        self.folder_counts = ""  # every job in the folder, whoever runs it (gat_tui.sweep.status)

    def compose(self) -> ComposeResult:
        yield Static("", id="run-header")
        with Horizontal(id="charts"):
            yield MetricChart("losses", ("loss_f", "loss_g"))
            yield MetricChart("accuracy", ("train_acc_clean", "train_acc_adv", "val_acc_clean", "val_acc_adv"))
        with Horizontal(id="lower"):
            yield DataTable(id="sweep-table")
            yield RichLog(id="log", wrap=True, markup=True, min_width=20)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("run", "clean test acc (%)", "own perturbation", "FGM-L2")
        self.refresh_table()
        self.redraw_header(0, len(SweepRunner(self.request.sweep, self.request.out, self.request.shard, self.request.shards).jobs))
        self.set_interval(0.5, self.redraw_charts)
        # other shards or machines may write into the same folder: the same source as `gat-tui sweep --status`
        self.set_interval(5.0, self.refresh_folder_status)
        self.run_sweep()

    def _post_progress(self, progress: SweepProgress) -> None:
        self.post_message(SweepUpdate(progress))

    @property
    def runs_folder(self) -> Path:
        """The sweep's run folders are OUT/runs/<label>/seed-<k>."""
        return self.request.out / "runs"

    @work(thread=True, exclusive=True, exit_on_error=False, group="sweep", name="sweep")
    def run_sweep(self) -> str:
        request = self.request
        runner = SweepRunner(
            request.sweep, request.out, request.shard, request.shards, self.control.stop, request.data_dir,
            on_progress=self._post_progress,
            subscribers_for=lambda job: [self._forward],
        )
        status = runner.run()
        self.post_message(self.Done(status))
        return status

    def on_sweep_screen_done(self, message: SweepScreen.Done) -> None:
        self.status = message.status
        self.current = ""
        self.query_one(RichLog).write(f"sweep {message.status}; q quits")
        self.redraw_header(*self.done_total)

    def show_worker_error(self, worker: Worker[Any], text: str) -> None:
        self.status = "failed"
        self.current = ""
        self.query_one(RichLog).write(f"[red]{escape(text)}[/red]")
        self.redraw_header(*self.done_total)

    def _forward(self, event: Event) -> None:
        self.post_message(EngineEvent(event))

    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        if isinstance(event, RunStarted):
            self.series = RunSeries()
        elif isinstance(event, StepMetrics):
            self.series.add_step(event)
        elif isinstance(event, EpochSummary):
            self.series.add_epoch(event)

    def on_sweep_update(self, message: SweepUpdate) -> None:
        progress = message.progress
        if progress.state == "running":
            self.current = progress.job
        else:
            self.counts[progress.state] = self.counts.get(progress.state, 0) + 1
            colour = {"finished": "green", "skipped": "dim", "failed": "red"}.get(progress.state, "yellow")
            detail = f" ({progress.message})" if progress.state in ("failed", "waiting") else ""
            self.query_one(RichLog).write(f"[{colour}]{progress.state}[/]: {escape(progress.job + detail)}")
            self.refresh_table()
            self.refresh_folder_status()
        self.redraw_header(progress.done, progress.total)

    def refresh_folder_status(self) -> None:
        from gat_tui.config import ConfigError
        from gat_tui.sweep.status import sweep_status

        if not (self.request.out / "sweep.toml").exists():
            return
        try:
            counts = sweep_status(self.request.out).counts()
        except (ConfigError, OSError):  # a sweep.toml being replaced: the next refresh reads it
            return
        self.folder_counts = ", ".join(f"{count} {state}" for state, count in counts.items())
        self.redraw_header(*self.done_total)

    def redraw_header(self, done: int, total: int) -> None:
        self.done_total = (done, total)
        running = 1 if self.current and self.status is None else 0
        self.query_one("#run-header", Static).update(
            f"[b]sweep {self.request.sweep.name}[/b]  shard {self.request.shard}/{self.request.shards}  "
            f"{self.request.out}\nthis window: {done} done, {running} running, {max(total - done - running, 0)} left  "
            f"(failed {self.counts.get('failed', 0)})  now: {self.current or '-'}"
            + (f"\nin the folder, all shards: {self.folder_counts}" if self.folder_counts else "")
        )

    def refresh_table(self) -> None:
        from gat_tui.sweep.report import build_report

        if not (self.request.out / "sweep.toml").exists():
            return
        table = self.query_one(DataTable)
        table.clear()
        for row in build_report(self.request.out).table:
            table.add_row(row.label, row.test_acc_clean.text(), row.test_acc_adv.text(), row.test_acc_fgm_l2.text())

    def redraw_charts(self) -> None:
        for chart, title in zip(self.query(MetricChart), ("losses", "accuracy")):
            chart.chart_title = f"{title} of {self.current}" if self.current else title  # which run the charts show
            chart.show([(self.current, self.series)])

    def action_stop(self) -> None:
        if self.status is not None:  # all done (or stopped, or failed): nothing to stop, so q quits
            self.app.exit({"finished": 0, "stopped": 130}.get(self.status, 1))
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.control.stop.set()
                self.query_one(RichLog).write("stopping after this step; run the sweep again to resume")

        self.app.push_screen(ConfirmScreen("Stop the sweep? The run in progress is checkpointed and resumes next time."), answered)
