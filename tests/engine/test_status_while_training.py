"""What `gat-tui runs` says of a run while it trains: a stopped run, once resumed, is "running"
(not the "stopped" of its summary file) with the epochs of its history counted, then "finished"."""

from __future__ import annotations

import threading
from pathlib import Path

from conftest import tiny_gat_config

from gat_tui.console.runs_table import RUN_COLUMNS, run_cells, shown_status
from gat_tui.events import EpochSummary, Event, StepMetrics
from gat_tui.runs.folder import RunPaths
from gat_tui.runs.index import read_run
from gat_tui.training.control import TrainingControl
from gat_tui.training.request import TrainingRequest
from gat_tui.training.trainer import Trainer

STATUS, EPOCHS = RUN_COLUMNS.index("status"), RUN_COLUMNS.index("epochs")


def test_a_resumed_run_is_running_while_it_trains_then_finished(tmp_path: Path) -> None:
    config = tiny_gat_config("resumed", epochs=3, panel_size=0, data={"train_size": 48, "val_size": 16, "test_size": 16})
    run_dir = tmp_path / "run"
    stop = threading.Event()

    def stop_in_epoch_two(event: Event) -> None:
        if isinstance(event, StepMetrics) and event.epoch == 2:
            stop.set()

    first = Trainer(TrainingRequest(config, run_dir), subscribers=[stop_in_epoch_two], control=TrainingControl(stop=stop)).run()
    assert first.status == "stopped"
    record = read_run(run_dir)
    assert record is not None and (record.status, record.epochs_done, record.epochs) == ("stopped", 1, 3)

    seen: list[tuple[str, int, str, int, tuple[str, ...]]] = []

    def look(event: Event) -> None:  # what `gat-tui runs` would print at this moment
        if isinstance(event, (StepMetrics, EpochSummary)):
            record = read_run(run_dir)
            assert record is not None
            cells = run_cells(record, shown_status(record))
            seen.append((type(event).__name__, event.epoch, cells[STATUS], record.epochs_done, cells))

    resumed = Trainer(TrainingRequest(config, run_dir, resume_from=RunPaths(run_dir).last_checkpoint), subscribers=[look]).run()
    assert resumed.status == "finished"
    assert seen and {status for _, _, status, _, _ in seen} == {"running"}
    # during epoch e, e - 1 epochs are done (the history's epoch 1 counted); after e's summary, e
    steps = [(epoch, done, cells[EPOCHS]) for kind, epoch, _, done, cells in seen if kind == "StepMetrics"]
    assert steps and all(done == epoch - 1 and shown == f"{epoch - 1}/3" for epoch, done, shown in steps)
    assert [(epoch, done) for kind, epoch, _, done, _ in seen if kind == "EpochSummary"] == [(2, 2), (3, 3)]
    record = read_run(run_dir)
    assert record is not None and (record.status, record.epochs_done) == ("finished", 3) and shown_status(record) == "finished"


def test_a_held_lock_outranks_the_summary_and_an_older_record(tmp_path: Path) -> None:
    """A summary that still says "stopped" (written before the resume) and a record read before the
    training took the lock: both give way to the lock, as `gat-tui runs` and the runs screen show it."""
    from gat_tui.runs.index import RunRecord
    from gat_tui.runs.lock import RunLock
    from gat_tui.runs.status import run_status

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "summary.json").write_text('{"status": "stopped"}')
    stale = RunRecord(run_dir, "p", "gat", "stopped", 1, 3, 0.5)
    assert run_status(run_dir) == "stopped" and shown_status(stale) == "stopped"
    with RunLock(run_dir):
        assert run_status(run_dir) == "running"
        assert shown_status(stale) == "running"
        assert shown_status(stale, training_here=[run_dir]) == "running (this window)"
    assert run_status(run_dir) == "stopped" and shown_status(stale) == "stopped"
