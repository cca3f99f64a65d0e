"""Past and current runs: open one's recorded charts, overlay several, resume, evaluate."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, RichLog, Static

from gat_tui.dashboard.series import RunSeries
from gat_tui.dashboard.widgets.metric_chart import MetricChart
from gat_tui.runs.folder import RunPaths, default_runs_dir
from gat_tui.runs.index import RunRecord, list_runs


class RunsScreen(Screen[None]):
    BINDINGS = [
        Binding("enter", "open", "open"),
        Binding("space", "mark", "mark"),
        Binding("o", "overlay", "overlay marked"),
        Binding("u", "resume", "resume"),
        Binding("v", "evaluate", "evaluate"),
        Binding("f5", "refresh", "refresh"),
        Binding("escape", "back", "back"),
    ]

    def __init__(self, runs_dir: Path | None = None) -> None:
        super().__init__()
        self.runs_dir = runs_dir or default_runs_dir()
        self.records: list[RunRecord] = []
        self.marked: set[Path] = set()

    def compose(self) -> ComposeResult:
        yield Static(f"[b]runs[/b] in {self.runs_dir}", id="title")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("", "preset", "method", "status", "epochs", "best val acc", "folder")
        self.action_refresh()
        self.set_interval(2.0, self.action_refresh)
        table.focus()

    def action_refresh(self) -> None:
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        self.records = list_runs(self.runs_dir)
        table.clear()
        for record in self.records:
            epochs = f"{record.epochs_done}/{record.epochs}" if record.epochs else str(record.epochs_done)
            accuracy = "-" if record.best_val_acc is None else f"{100 * record.best_val_acc:.2f}%"
            mark = "●" if record.folder in self.marked else ""
            table.add_row(mark, record.preset, record.method, record.status, epochs, accuracy, str(record.folder))
        if self.records:
            table.move_cursor(row=min(cursor, len(self.records) - 1))

    def current(self) -> RunRecord | None:
        row = self.query_one(DataTable).cursor_row
        return self.records[row] if 0 <= row < len(self.records) else None

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
        if record.status in ("running", "finished"):
            self.notify(f"{record.preset} is {record.status}; only stopped or failed runs resume", severity="warning")
            return
        self.app.resume_run(record.folder)  # type: ignore[attr-defined]

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


class EvaluationScreen(Screen[None]):
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

    @work(thread=True, exclusive=True, exit_on_error=False, group="evaluation")
    def evaluate(self) -> None:
        from gat_tui.console.eval_tables import results_table
        from gat_tui.robustness.evaluate import evaluate_checkpoint

        try:
            done = evaluate_checkpoint(self.checkpoint, ["fgsm", "fgm-l2", "random"], limit=self.limit)
            table = results_table(done.results, f"{self.checkpoint.parent.parent.name}: test split, {done.count} images")
            self.app.call_from_thread(self.query_one(RichLog).write, table)
        except Exception as error:  # shown on screen, never a traceback over the terminal
            self.app.call_from_thread(self.query_one(RichLog).write, f"[red]evaluation failed: {error}[/red]")

    def action_back(self) -> None:
        self.app.pop_screen()
