"""Past and current runs: open one's recorded charts, overlay several, resume, evaluate."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, RichLog, Static
from textual.worker import Worker

from gat_tui.console.runs_table import RUN_COLUMNS, is_running, run_cells, shown_status
from gat_tui.dashboard.series import RunSeries
from gat_tui.dashboard.widgets.metric_chart import MetricChart
from gat_tui.dashboard.workers import WorkerScreen
from gat_tui.runs.folder import RunPaths, default_runs_dir
from gat_tui.runs.index import RunRecord, list_runs, read_run


class RunsScreen(Screen[None]):
    """The runs directly under `runs_dir`, or those matching `pattern` under it (a sweep's `*/seed-*`)."""

    class Resume(Message):
        """Continue this stopped or failed run from its last checkpoint."""

        def __init__(self, run_dir: Path) -> None:
            super().__init__()
            self.run_dir = run_dir

    BINDINGS = [
        Binding("enter", "open", "open"),
        Binding("space", "mark", "mark"),
        Binding("o", "overlay", "overlay marked"),
        Binding("u", "resume", "resume"),
        Binding("v", "evaluate", "evaluate"),
        Binding("f5", "refresh", "refresh"),
        Binding("escape", "back", "back"),
    ]

    def __init__(
        self,
        runs_dir: Path | None = None,
        training_here: Callable[[], Collection[Path]] = lambda: (),
        pattern: str | None = None,
    ) -> None:
        super().__init__()
        self.runs_dir = runs_dir or default_runs_dir()
        self.training_here = training_here  # the run folders this window trains now
        self.pattern = pattern
        self.records: list[RunRecord] = []
        self.statuses: list[str] = []
        self.marked: set[Path] = set()

    def compose(self) -> ComposeResult:
        where = self.runs_dir / self.pattern if self.pattern else self.runs_dir
        yield Static(f"[b]runs[/b] in {escape(str(where))}", id="title")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("", *RUN_COLUMNS)
        self.action_refresh()
        self.set_interval(2.0, self.action_refresh)
        table.focus()

    def action_refresh(self) -> None:
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        self.records = self.read_records()
        here = set(self.training_here())
        self.statuses = [shown_status(record, here) for record in self.records]
        table.clear()
        for record, status in zip(self.records, self.statuses, strict=True):
            mark = "●" if record.folder in self.marked else ""
            table.add_row(mark, *run_cells(record, status))
        if self.records:
            table.move_cursor(row=min(cursor, len(self.records) - 1))

    def read_records(self) -> list[RunRecord]:
        if self.pattern is None:
            return list_runs(self.runs_dir)
        records = [read_run(folder) for folder in sorted(self.runs_dir.glob(self.pattern)) if folder.is_dir()]
        return [record for record in records if record is not None]

    def current(self) -> RunRecord | None:
        row = self.query_one(DataTable).cursor_row
        return self.records[row] if 0 <= row < len(self.records) else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # Enter and a click on the highlighted row: the table takes the key, so its message opens the run
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        record = self.current()
        if record is not None:
            self.app.push_screen(RunChartsScreen([record]))

    def action_mark(self) -> None:
        record = self.current()
        if record is not None:
            self.marked ^= {record.folder}
            self.action_refresh()

    def action_overlay(self) -> None:
        chosen = [record for record in self.records if record.folder in self.marked]
        if len(chosen) >= 1:
            self.app.push_screen(RunChartsScreen(chosen))
        else:
            self.notify("mark runs with space first", severity="warning")

    def action_resume(self) -> None:
        record = self.current()
        if record is None:
            return
        status = shown_status(record, set(self.training_here()))
        if is_running(status) or status == "finished":
            why = "it is being trained; one writer at a time" if is_running(status) else "it is finished"
            self.notify(f"{record.folder.name} is {status}: not resumed, {why}", severity="warning", timeout=8)
            return
        self.post_message(self.Resume(record.folder))

    def action_evaluate(self) -> None:
        record = self.current()
        if record is not None:
            self.app.push_screen(EvaluationScreen(RunPaths(record.folder).best_checkpoint))

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()


class RunChartsScreen(Screen[None]):
    """Recorded curves of one run, or of several overlaid, from their metrics.jsonl."""

    BINDINGS = [Binding("escape,q", "back", "back"), Binding("x", "x_axis", "x: step/epoch")]

    def __init__(self, records: list[RunRecord]) -> None:
        super().__init__()
        self.records = records
        self.x_axis = "step" if len(records) == 1 else "epoch"

    def compose(self) -> ComposeResult:
        names = ", ".join(f"{r.preset} ({r.folder.name})" for r in self.records)
        yield Static(f"[b]{names}[/b]", id="title")
        with Horizontal(id="charts"):
            yield MetricChart("losses", ("loss_f", "loss_g"))
            yield MetricChart("perturbation norm", ("pert_l2", "pert_linf"))
        with Horizontal(id="charts-lower"):
            yield MetricChart("validation accuracy", ("val_acc_clean", "val_acc_adv", "val_acc_fgm_l2"))
        yield Footer()

    def on_mount(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        runs = [(record.folder.name, RunSeries.from_metrics_file(RunPaths(record.folder).metrics)) for record in self.records]
        for chart in self.query(MetricChart):
            chart.show(runs, self.x_axis)

    def action_x_axis(self) -> None:
        self.x_axis = "epoch" if self.x_axis == "step" else "step"
        self.redraw()

    def action_back(self) -> None:
        self.app.pop_screen()


class EvaluationScreen(WorkerScreen):
    """Runs `gat-tui eval`'s default attacks on a checkpoint in a worker and shows the table."""

    BINDINGS = [Binding("escape,q", "back", "back")]

    def __init__(self, checkpoint: Path, limit: int = 1000) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.limit = limit

    def compose(self) -> ComposeResult:
        yield Static(f"[b]evaluation[/b] of {self.checkpoint} (first {self.limit} test images)", id="title")
        yield RichLog(id="eval-log", wrap=True, markup=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(RichLog).write("running FGSM, FGM-L2 and random attacks…")
        self.evaluate()

    @work(thread=True, exclusive=True, exit_on_error=False, group="evaluation", name="evaluation")
    def evaluate(self) -> None:
        from gat_tui.console.eval_tables import results_table
        from gat_tui.robustness.evaluate import evaluate_checkpoint

        # an error is shown on screen by WorkerScreen, never a traceback over the terminal
        done = evaluate_checkpoint(self.checkpoint, ["fgsm", "fgm-l2", "random"], limit=self.limit)
        table = results_table(done.results, f"{self.checkpoint.parent.parent.name}: test split, {done.count} images")
        self.app.call_from_thread(self.query_one(RichLog).write, table)

    def show_worker_error(self, worker: Worker[Any], text: str) -> None:
        self.query_one(RichLog).write(f"[red]{escape(text)}[/red]")

    def action_back(self) -> None:
        self.app.pop_screen()
