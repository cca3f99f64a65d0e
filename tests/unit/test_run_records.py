"""What `gat-tui runs` lists of each run folder, by hand: its preset, method, status, epochs done of
planned, best validation accuracy and training time, read from config.toml and metrics.jsonl
(lines of the wrong shape passed over); which folders are runs, which are broken and why, and the
newest-first order."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gat_tui.runs.index import (
    MetricsSummary,
    RunRecord,
    UnreadableRun,
    list_runs,
    metrics_summary,
    read_run,
    read_runs,
    scan_runs,
)
from gat_tui.runs.lock import RunLock


def make_run(folder: Path, config: str = 'name = "tiny"\nmethod = "gat"\n[train]\nepochs = 5\n', lines: list[object] | None = None) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(config, encoding="utf-8")
    if lines is not None:
        (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return folder


def test_a_metrics_file_gives_the_last_epoch_the_best_accuracy_and_the_longest_time(tmp_path: Path) -> None:
    metrics = make_run(
        tmp_path / "run",
        lines=[
            {"event": "step", "epoch": 1, "step": 10, "time": 12.5, "val_acc_clean": 0.99},  # a step's figure is not an epoch's
            {"event": "epoch", "epoch": 1, "step": 10, "val_acc_clean": 0.5, "time": 20.0},
            {"event": "epoch", "epoch": 3, "step": 30, "val_acc_clean": 0.625, "time": 61.0},
            {"event": "epoch", "epoch": 2, "step": 20, "val_acc_clean": 0.75, "time": 40.0},  # best, not last
            {"event": "step", "epoch": 3, "step": 31, "time": 75.25},  # the longest time is a step's
            {"event": "epoch", "epoch": True, "val_acc_clean": 0.9},  # a bool epoch: passed over
            {"event": "epoch", "epoch": "4", "val_acc_clean": 0.9},  # a text epoch: passed over
            {"event": "epoch", "epoch": 2.0, "val_acc_clean": 0.9},  # a float epoch: passed over
            {"event": "epoch", "epoch": 3, "val_acc_clean": True, "time": False},  # bools are not figures
            {"event": "epoch", "epoch": 3, "val_acc_clean": "0.8", "time": "99"},
            ["event", "epoch"],
            7,
        ],
    ) / "metrics.jsonl"
    assert metrics_summary(metrics) == MetricsSummary(epochs_done=3, best_val_acc=0.75, training_seconds=75.25)


def test_a_metrics_file_without_epochs_or_times_has_none_of_their_figures(tmp_path: Path) -> None:
    metrics = make_run(tmp_path / "run", lines=[{"event": "step", "epoch": 1, "step": 1}]) / "metrics.jsonl"
    assert metrics_summary(metrics) == MetricsSummary(0, None, None)
    assert metrics_summary(tmp_path / "missing.jsonl") == MetricsSummary(0, None, None)
    # an integer accuracy and time count (1 is a fraction, 0 a time)
    metrics.write_text('{"event": "epoch", "epoch": 1, "val_acc_clean": 1, "time": 0}\n', encoding="utf-8")
    os.utime(metrics, ns=(0, 10**9))
    assert metrics_summary(metrics) == MetricsSummary(1, 1, 0)


def test_a_metrics_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_bytes(b'{"event": "epoch", "epoch": 1}\n\xff\xfe\n')
    with pytest.raises(UnreadableRun, match=r"^" + str(metrics).replace("\\", "\\\\") + r": not UTF-8 text \("):
        metrics_summary(metrics)


def test_a_run_record_reads_the_config_and_the_metrics(tmp_path: Path) -> None:
    folder = make_run(
        tmp_path / "gat-20261207",
        config='name = "mnist-gat"\nmethod = "gat"\n[train]\nepochs = 5\n',
        lines=[{"event": "epoch", "epoch": 1, "val_acc_clean": 0.5}, {"event": "epoch", "epoch": 2, "val_acc_clean": 0.25}],
    )
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "last.safetensors").write_bytes(b"weights")
    assert read_run(folder) == RunRecord(folder, "mnist-gat", "gat", "stopped", 2, 5, 0.5)
    (folder / "summary.json").write_text('{"status": "finished"}', encoding="utf-8")
    assert read_run(folder) == RunRecord(folder, "mnist-gat", "gat", "finished", 2, 5, 0.5)
    with RunLock(folder):
        record = read_run(folder)
        assert record is not None and record.status == "running"


def test_a_config_without_name_method_or_epochs_shows_the_folder_and_question_marks(tmp_path: Path) -> None:
    folder = make_run(tmp_path / "old-run", config="seed = 1\n")
    # began (it has a config) but has neither summary nor checkpoint: it died before its first checkpoint
    assert read_run(folder) == RunRecord(folder, "old-run", "?", "failed", 0, None, None)
    for train in ("epochs = true", 'epochs = "5"', "epochs = 2.5"):
        (folder / "config.toml").write_text(f"[train]\n{train}\n", encoding="utf-8")
        record = read_run(folder)
        assert record is not None and record.epochs is None, train
    (folder / "config.toml").write_text("train = 5\n", encoding="utf-8")  # not a table
    record = read_run(folder)
    assert record is not None and record.epochs is None


def test_a_folder_without_config_is_no_run_and_a_broken_config_is_named(tmp_path: Path) -> None:
    assert read_run(tmp_path / "missing") is None
    (tmp_path / "empty").mkdir()
    assert read_run(tmp_path / "empty") is None
    broken = make_run(tmp_path / "broken", config="name = \n")
    with pytest.raises(UnreadableRun) as error:
        read_run(broken)
    assert str(error.value).startswith(f"{broken / 'config.toml'}: cannot be read (")
    (broken / "config.toml").write_bytes(b'name = "\xff"\n')
    with pytest.raises(UnreadableRun, match="cannot be read"):
        read_run(broken)
    (broken / "config.toml").unlink()
    (broken / "config.toml").mkdir()
    with pytest.raises(UnreadableRun, match="cannot be read"):
        read_run(broken)


def test_reading_folders_keeps_their_order_passes_over_non_runs_and_names_broken_ones(tmp_path: Path) -> None:
    second = make_run(tmp_path / "b", config='name = "second"\n')
    first = make_run(tmp_path / "a", config='name = "first"\n')
    (tmp_path / "not-a-run").mkdir()
    broken = make_run(tmp_path / "c", config="[[[")
    scan = read_runs([second, tmp_path / "not-a-run", broken, first])
    assert [record.preset for record in scan.records] == ["second", "first"]
    assert len(scan.skipped) == 1 and scan.skipped[0].startswith(f"{broken / 'config.toml'}: cannot be read (")


def test_a_runs_folder_is_listed_newest_first(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for name, modified in (("a", 300), ("b", 100), ("c", 200)):
        folder = make_run(runs / name, config=f'name = "{name}"\n')
        os.utime(folder, (modified, modified))
    (runs / "notes.txt").write_text("a file, not a run", encoding="utf-8")
    broken = make_run(runs / "d", config="[[[")
    os.utime(broken, (400, 400))
    scan = scan_runs(runs)
    assert [record.preset for record in scan.records] == ["a", "c", "b"]
    assert len(scan.skipped) == 1 and "d" in scan.skipped[0]
    assert [record.preset for record in list_runs(runs)] == ["a", "c", "b"]
    assert scan_runs(tmp_path / "nowhere") == scan_runs(runs / "notes.txt") == type(scan)([], [])
    assert list_runs(tmp_path / "nowhere") == []
