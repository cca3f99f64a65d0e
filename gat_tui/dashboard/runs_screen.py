"""Past and current runs: open one's recorded charts, overlay several, resume, evaluate; `/` filters."""

from __future__ import annotations

import re
import time
import tomllib
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, RichLog, Static
from textual.worker import Worker

from gat_tui.console.runs_table import RUN_COLUMNS, is_running, run_cells, shown_status
from gat_tui.dashboard.series import X_AXES, RunSeries
from gat_tui.dashboard.widgets.metric_chart import MetricChart
from gat_tui.dashboard.widgets.preview_grid import PreviewGrid
from gat_tui.dashboard.workers import WorkerScreen
from gat_tui.runs.folder import RunPaths, default_runs_dir
from gat_tui.runs.index import RunRecord, UnreadableRun, list_runs, metrics_summary, read_run
from gat_tui.runs.panels import saved_panels
from gat_tui.sweep.folders import SweepRuns, sweep_folders, sweep_runs

# shown between the runs table's own columns and the folder: when, how long, and the key hyperparameters
DETAIL_COLUMNS = ("started", "duration", "c_g", "α", "ε", "lr_g")
# the hyperparameters among DETAIL_COLUMNS each method reads (gat_tui.methods.build_method)
METHOD_PARAMETERS = {
    "baseline": (),
    "dropout": (),
    "random": ("α", "ε"),
    "fg_linf": ("α", "ε"),
    "fg_l2": ("α", "ε"),
    "gat": ("c_g", "α", "lr_g"),
    "dropout_gat": ("c_g", "α", "lr_g"),
    "gat_attack": ("c_g", "lr_g"),
}
_STAMP = re.compile(r"-(\d{8}-\d{6})(?:-\d+)?$")
_details_cache: dict[Path, tuple[tuple[int, int], tuple[str, ...]]] = {}


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def run_details(folder: Path) -> tuple[str, ...]:
    """(started, duration, c_g, α, ε, lr_g) of a run folder, from its name or config.toml and metrics.jsonl.

    The start is the folder name's timestamp (`<preset>-YYYYmmdd-HHMMSS`) or else the config's
    modification time; the duration is the training time of its last metrics line, from the metrics
    summary the run's record was read from (one parse per change). Cached until metrics.jsonl changes.
    """
    paths = RunPaths(folder)
    try:
        changed_file = paths.metrics if paths.metrics.exists() else paths.config
        stat = changed_file.stat()
        changed = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        return ("-",) * len(DETAIL_COLUMNS)
    cached = _details_cache.get(folder)
    if cached is not None and cached[0] == changed:
        return cached[1]
    try:
        config = tomllib.loads(paths.config.read_text(encoding="utf-8"))
        training_seconds = metrics_summary(paths.metrics).training_seconds
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, UnreadableRun):
        return ("-",) * len(DETAIL_COLUMNS)
    stamp = _STAMP.search(folder.name)
    try:
        started = time.strptime(stamp.group(1), "%Y%m%d-%H%M%S") if stamp else time.localtime(paths.config.stat().st_mtime)
        started_text = time.strftime("%Y-%m-%d %H:%M", started)
    except (ValueError, OSError):
        started_text = "-"
    duration = "-"
    if training_seconds is not None:
        seconds = int(training_seconds)
        hours, rest = divmod(seconds, 3600)
        duration = f"{hours}:{rest // 60:02d}:{rest % 60:02d}"

    def section(name: str) -> dict:
        value = config.get(name, {})
        return value if isinstance(value, dict) else {}

    used = METHOD_PARAMETERS.get(str(config.get("method", "")), DETAIL_COLUMNS[2:])
    values = {
        "c_g": section("gat").get("c_g"),
        "α": section("train").get("alpha"),
        "ε": section("perturbation").get("eps"),
        "lr_g": section("gat").get("lr_g"),
    }
    # a method's own hyperparameters only: a baseline's config holds a c_g and an ε it never reads
    details = (started_text, duration, *(_number(values[name]) if name in used else "" for name in DETAIL_COLUMNS[2:]))
    _details_cache[folder] = (changed, details)
    return details


class RunsScreen(Screen[None]):
    """The runs directly under `runs_dir`, then each sweep's runs under a heading row (enter folds it, space
    marks all its runs); or only those matching `pattern` under it (a sweep's `*/seed-*`)."""

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
        Binding("i", "panels", "panels"),
        Binding("f5", "refresh", "refresh"),
        Binding("slash", "filter", "filter"),
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
        self.rows: list[RunRecord | SweepRuns] = []  # what each table row shows: a run, or a sweep's heading
        self.marked: set[Path] = set()
        self.collapsed: set[Path] = set()  # sweeps whose runs are hidden (enter on the heading)
        self.filter_text = ""

    @property
    def records(self) -> list[RunRecord]:
        """The runs in the table, in its order."""
        return [row for row in self.rows if isinstance(row, RunRecord)]

    def compose(self) -> ComposeResult:
        where = self.runs_dir / self.pattern if self.pattern else self.runs_dir
        yield Static(f"[b]runs[/b] in {escape(str(where))}", id="title")
        yield Input(placeholder="filter: any text of a row (preset, method, status, folder, c_g…); escape clears", id="runs-filter")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        *columns, folder_column = RUN_COLUMNS
        table.add_columns("", *columns, *DETAIL_COLUMNS, folder_column)
        self.action_refresh()
        self.set_interval(2.0, self.action_refresh)
        table.focus()

    def action_refresh(self) -> None:
        """Read the runs again: the folder's own, newest first, then each sweep's under a heading row."""
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        here = set(self.training_here())
        wanted = self.filter_text.lower()
        width = len(RUN_COLUMNS) - 1 + len(DETAIL_COLUMNS)  # the cells before the folder
        rows: list[tuple[RunRecord | SweepRuns, tuple[str, ...]]] = []
        for record in self.read_records():
            row = self._run_row(record, here)
            if wanted in " ".join(row).lower():
                rows.append((record, row))
        for sweep in self.read_sweeps():
            shown = []
            for record in sweep.records:
                row = self._run_row(record, here, place=sweep.label(record))
                if wanted in f"{sweep.name} {' '.join(row)}".lower():
                    shown.append((record, row))
            if not shown:
                continue
            rows.append((sweep, self._heading_row(sweep, [record for record, _ in shown], here, width)))
            if sweep.folder not in self.collapsed:
                rows.extend(shown)
        self.rows = [row for row, _ in rows]
        table.clear()
        for item, cells in rows:
            folders = [r.folder for r in item.records] if isinstance(item, SweepRuns) else [item.folder]
            mark = "●" if all(folder in self.marked for folder in folders) else ""
            table.add_row(mark, *cells)
        if self.rows:
            table.move_cursor(row=min(cursor, len(self.rows) - 1))

    def _run_row(self, record: RunRecord, here: set[Path], place: str | None = None) -> tuple[str, ...]:
        """A run's cells; a sweep's run shows its place (`  └ label/seed-k`) where others show their folder's name."""
        *cells, folder = run_cells(record, shown_status(record, here))
        if place is not None:
            cells[0] = f"  └ {place}"
        return (*cells, *run_details(record.folder), folder)

    def _heading_row(self, sweep: SweepRuns, shown: list[RunRecord], here: set[Path], width: int) -> tuple[str, ...]:
        """`▾ sweep NAME`, how many of its runs finished, their best validation accuracy, and its folder."""
        statuses = [shown_status(record, here) for record in shown]
        finished = sum(status == "finished" for status in statuses)
        running = sum(is_running(status) for status in statuses)
        state = f"{finished}/{len(shown)} finished" + (f", {running} running" if running else "")
        accuracies = [record.best_val_acc for record in shown if record.best_val_acc is not None]
        best = f"{100 * max(accuracies):.2f}%" if accuracies else "-"
        arrow = "▸" if sweep.folder in self.collapsed else "▾"
        cells = [""] * width + [str(sweep.folder)]
        cells[RUN_COLUMNS.index("run")] = f"{arrow} sweep {sweep.name}"
        cells[RUN_COLUMNS.index("status")] = state
        cells[RUN_COLUMNS.index("best val acc")] = best
        return tuple(cells)

    def action_filter(self) -> None:
        field = self.query_one("#runs-filter", Input)
        field.add_class("-shown")
        field.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.action_refresh()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    def read_records(self) -> list[RunRecord]:
        if self.pattern is None:
            return list_runs(self.runs_dir)
        records = [read_run(folder) for folder in sorted(self.runs_dir.glob(self.pattern)) if folder.is_dir()]
        return [record for record in records if record is not None]

    def read_sweeps(self) -> list[SweepRuns]:
        """The sweeps in the runs folder (none when this screen lists one sweep's runs already)."""
        if self.pattern is not None:
            return []
        return [sweep for sweep in map(sweep_runs, sweep_folders(self.runs_dir)) if sweep.records]

    def current_row(self) -> RunRecord | SweepRuns | None:
        row = self.query_one(DataTable).cursor_row
        return self.rows[row] if 0 <= row < len(self.rows) else None

    def current(self) -> RunRecord | None:
        """The run under the cursor; None on a sweep's heading."""
        row = self.current_row()
        return row if isinstance(row, RunRecord) else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # Enter and a click on the highlighted row: the table takes the key, so its message opens the run
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        """A run: its charts; a sweep's heading: fold or unfold its runs."""
        row = self.current_row()
        if isinstance(row, SweepRuns):
            self.collapsed ^= {row.folder}
            self.action_refresh()
        elif row is not None:
            self.app.push_screen(RunChartsScreen([row]))

    def action_mark(self) -> None:
        """Mark a run for the overlay; on a sweep's heading, all its runs (or unmark them all)."""
        row = self.current_row()
        if isinstance(row, SweepRuns):
            folders = {record.folder for record in row.records}
            self.marked = self.marked - folders if folders <= self.marked else self.marked | folders
            self.action_refresh()
        elif row is not None:
            self.marked ^= {row.folder}
            self.action_refresh()

    def action_overlay(self) -> None:
        chosen = [record for record in self.records if record.folder in self.marked]
        chosen += [r for sweep in self.read_sweeps() if sweep.folder in self.collapsed for r in sweep.records if r.folder in self.marked]
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

    def action_panels(self) -> None:
        """The selected run's saved validation panels (panels/epoch_NNN.safetensors)."""
        record = self.current()
        if record is not None:
            self.app.push_screen(RunPanelsScreen(record, getattr(self.app, "color", True)))

    def action_back(self) -> None:
        field = self.query_one("#runs-filter", Input)
        if field.has_class("-shown"):  # escape clears the filter first
            field.value = ""
            field.remove_class("-shown")
            self.query_one(DataTable).focus()
            return
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()


class RunChartsScreen(Screen[None]):
    """Recorded curves of one run, or of several overlaid, from their metrics.jsonl."""

    BINDINGS = [Binding("escape,q", "back", "back"), Binding("x", "x_axis", "axis"), Binding("l", "log_y", "log y")]

    def __init__(self, records: list[RunRecord]) -> None:
        super().__init__()
        self.records = records
        self.x_axis = "step" if len(records) == 1 else "epoch"

    def compose(self) -> ComposeResult:
        names = ", ".join(f"{r.preset} ({r.folder.name})" for r in self.records)
        yield Static(f"[b]{names}[/b]", id="title")
        with Horizontal(id="charts"):
            yield MetricChart("losses", ("loss_f", "loss_g"))
            yield MetricChart("‖δ‖₂", ("pert_l2", "val_pert_l2"))
            yield MetricChart("‖δ‖∞", ("pert_linf", "val_pert_linf"))
        with Horizontal(id="charts-lower"):
            yield MetricChart("validation accuracy", ("val_acc_clean", "val_acc_adv", "val_acc_fgm_l2", "val_acc_pgd"))
        yield Footer()

    def on_mount(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        runs = [(record.folder.name, RunSeries.from_metrics_file(RunPaths(record.folder).metrics)) for record in self.records]
        for chart in self.query(MetricChart):
            chart.show(runs, self.x_axis)

    def action_x_axis(self) -> None:
        self.x_axis = X_AXES[(X_AXES.index(self.x_axis) + 1) % len(X_AXES)]
        self.redraw()

    def action_log_y(self) -> None:
        chart = self.focused if isinstance(self.focused, MetricChart) else self.query(MetricChart).first()
        chart.toggle_log_y()

    def action_back(self) -> None:
        self.app.pop_screen()


class RunPanelsScreen(Screen[None]):
    """The validation panels saved in a run folder, newest first shown; `[` and `]` step through the epochs."""

    BINDINGS = [
        Binding("escape,q", "back", "back"),
        Binding("left_square_bracket", "step(-1)", "earlier"),  # the footer shows the key itself before it
        Binding("right_square_bracket", "step(1)", "later"),
    ]

    def __init__(self, record: RunRecord, color: bool = True) -> None:
        super().__init__()
        self.record = record
        self.color = color

    def compose(self) -> ComposeResult:
        yield Static(f"[b]validation panels[/b] of {escape(self.record.folder.name)} ({escape(self.record.preset)})", id="title")
        with VerticalScroll(id="panels-box"):
            yield PreviewGrid(self.color, id="previews", run_dir=self.record.folder)
        yield Footer()

    def on_mount(self) -> None:
        grid = self.query_one(PreviewGrid)
        saved = saved_panels(self.record.folder)
        if saved:
            grid.add_saved(saved)
        else:
            grid.update(f"no validation panels saved in {escape(str(RunPaths(self.record.folder).panels))}")

    def action_step(self, delta: int) -> None:
        self.query_one(PreviewGrid).step(delta)

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
        yield Static(f"[b]evaluation[/b] of {escape(str(self.checkpoint))} (test split, up to {self.limit} images)", id="title")
        yield RichLog(id="eval-log", wrap=True, markup=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(RichLog).write("running FGSM, FGM-L2 and random attacks…")
        self.evaluate()

    @work(thread=True, exclusive=True, exit_on_error=False, group="evaluation", name="evaluation")
    def evaluate(self) -> None:
        from gat_tui.console.eval_tables import results_table
        from gat_tui.robustness.evaluate import evaluate_checkpoint
        from gat_tui.robustness.options import EvalOptions

        # an error is shown on screen by WorkerScreen, never a traceback over the terminal
        done = evaluate_checkpoint(self.checkpoint, EvalOptions(attacks=("fgsm", "fgm-l2", "random"), limit=self.limit))
        table = results_table(done.results, f"{self.checkpoint.parent.parent.name}: test split, {done.count} images")
        self.app.call_from_thread(self.query_one(RichLog).write, table)
        title = f"[b]evaluation[/b] of {escape(str(self.checkpoint))} ({done.count} test images)"  # what it was, not the cap
        self.app.call_from_thread(self.query_one("#title", Static).update, title)

    def show_worker_error(self, worker: Worker[Any], text: str) -> None:
        self.query_one(RichLog).write(f"[red]{escape(text)}[/red]")

    def action_back(self) -> None:
        self.app.pop_screen()
