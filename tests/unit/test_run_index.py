"""Reading run folders back: metrics.jsonl is parsed once per change, for the run record and the
runs screen's detail columns together."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from gat_tui.dashboard.runs_screen import DETAIL_COLUMNS, run_details
from gat_tui.runs import index


def write_run(folder: Path, accuracies: list[float]) -> Path:
    folder.mkdir()
    (folder / "config.toml").write_text('name = "tiny"\nmethod = "gat"\n[train]\nepochs = 5\n', encoding="utf-8")
    metrics = folder / "metrics.jsonl"
    lines = [{"event": "epoch", "epoch": n + 1, "val_acc_clean": acc, "time": 90.0 * (n + 1)} for n, acc in enumerate(accuracies)]
    metrics.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return metrics


def test_metrics_are_parsed_again_only_when_the_file_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = write_run(tmp_path / "run", [0.5, 0.75])
    reads: list[Path] = []
    real_read = index.read_json_lines

    def counting_read(path: Path) -> list[object]:
        reads.append(path)
        return real_read(path)

    monkeypatch.setattr(index, "read_json_lines", counting_read)
    first = index.read_run(tmp_path / "run")
    second = index.read_run(tmp_path / "run")
    assert first is not None and second is not None
    assert (first.epochs_done, first.best_val_acc) == (2, 0.75)
    assert (second.epochs_done, second.best_val_acc) == (2, 0.75)
    assert reads == [metrics]

    with metrics.open("a", encoding="utf-8") as file:
        file.write(json.dumps({"event": "epoch", "epoch": 3, "val_acc_clean": 0.875}) + "\n")
    third = index.read_run(tmp_path / "run")
    assert third is not None
    assert (third.epochs_done, third.best_val_acc) == (3, 0.875)
    assert reads == [metrics, metrics]


def test_the_record_and_the_detail_columns_share_one_parse_per_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs screen shows a run's record and its detail columns: one read of a changed metrics.jsonl
    serves both, and an unchanged one is not read at all."""
    metrics = write_run(tmp_path / "run", [0.5, 0.75])
    reads: list[Path] = []
    real_read_text = Path.read_text

    # counted at the file, so that any reader of metrics.jsonl, wherever it is imported, is caught
    def counting_read_text(path: Path, *args: Any, **kwargs: Any) -> str:
        if path.name == "metrics.jsonl":
            reads.append(path)
        return real_read_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting_read_text)
    duration = DETAIL_COLUMNS.index("duration")

    def screen_row() -> tuple[int, float | None, str]:
        record = index.read_run(tmp_path / "run")  # the screen reads the record, then its detail columns
        assert record is not None
        return record.epochs_done, record.best_val_acc, run_details(tmp_path / "run")[duration]

    assert screen_row() == (2, 0.75, "0:03:00")
    assert reads == [metrics]
    assert screen_row() == (2, 0.75, "0:03:00")
    assert reads == [metrics]

    with metrics.open("a", encoding="utf-8") as file:
        file.write(json.dumps({"event": "epoch", "epoch": 3, "val_acc_clean": 0.875, "time": 3725.5}) + "\n")
    assert screen_row() == (3, 0.875, "1:02:05")
    assert reads == [metrics, metrics]


def test_a_rewritten_file_of_the_same_size_is_read_again(tmp_path: Path) -> None:
    """A resume truncates and rewrites metrics.jsonl; a new modification time alone invalidates."""
    metrics = write_run(tmp_path / "run", [0.5, 0.75])
    record = index.read_run(tmp_path / "run")
    assert record is not None and record.best_val_acc == 0.75
    metrics.write_text(metrics.read_text(encoding="utf-8").replace("0.75", "0.25"), encoding="utf-8")
    stat = metrics.stat()
    os.utime(metrics, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    record = index.read_run(tmp_path / "run")
    assert record is not None and record.best_val_acc == 0.5


@pytest.mark.parametrize(
    ("method", "shown"),
    [("baseline", ("", "", "", "")), ("fg_l2", ("", "0.3", "2", "")), ("gat", ("0.01", "0.3", "", "0.001"))],
)
def test_the_detail_columns_show_only_the_hyperparameters_the_method_uses(tmp_path: Path, method: str, shown: tuple[str, ...]) -> None:
    folder = tmp_path / f"{method}-run"
    folder.mkdir()
    (folder / "config.toml").write_text(
        f'name = "tiny"\nmethod = "{method}"\n[train]\nalpha = 0.3\n[perturbation]\neps = 2.0\n[gat]\nc_g = 0.01\nlr_g = 0.001\n',
        encoding="utf-8",
    )
    assert DETAIL_COLUMNS[2:] == ("c_g", "α", "ε", "lr_g")
    assert run_details(folder)[2:] == shown  # a baseline's config holds a c_g and an ε it never reads
