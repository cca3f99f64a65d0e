"""The runs table's cells (`gat-tui runs` and the dashboard's runs screen), by hand."""

from __future__ import annotations

from pathlib import Path

from gat_tui.console.runs_table import RUN_COLUMNS, RUNNING_HERE, is_running, run_cells
from gat_tui.runs.index import RunRecord

FOLDER = Path("runs/2026-12-07_1030_gat")


def test_the_cells_of_a_run_with_a_known_length_and_accuracy() -> None:
    record = RunRecord(FOLDER, "mnist_gat", "gat", "stopped", 3, 10, 0.984375)  # 63/64: 98.4375 %
    cells = run_cells(record)
    assert dict(zip(RUN_COLUMNS, cells)) == {
        "run": "2026-12-07_1030_gat", "status": "stopped", "epochs": "3/10", "best val acc": "98.44%",
        "method": "gat", "preset": "mnist_gat", "folder": str(FOLDER),
    }
    assert run_cells(record, "running")[1] == "running"  # the shown status replaces the record's


def test_the_cells_of_a_run_without_a_length_or_an_accuracy() -> None:
    cells = run_cells(RunRecord(FOLDER, "p", "standard", "failed", 2, None, None))
    assert (cells[1], cells[2], cells[3]) == ("failed", "2", "-")
    assert run_cells(RunRecord(FOLDER, "p", "standard", "failed", 0, 0, 0.5))[2:4] == ("0", "50.00%")  # 0 epochs: no "/0"


def test_which_statuses_are_running() -> None:
    assert is_running("running") and is_running(RUNNING_HERE)
    assert not any(is_running(status) for status in ("finished", "stopped", "failed"))
