"""Which folders the runs screen shows as sweeps and which runs it groups under each, and what a
sweep evaluation's JSON file holds (the evaluation itself is a stand-in; its figures have their
tests in test_eval_figures.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gat_tui.sweep.folders import is_sweep_folder, sweep_folders, sweep_runs
from gat_tui.sweep.plan import Evaluation


def sweep(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "sweep.toml").write_text("")
    return folder


def run(folder: Path, name: str = "tiny") -> Path:
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(f'name = "{name}"\nmethod = "gat"\n')
    return folder


def test_sweep_folders_are_found_in_the_runs_folder_and_its_sweeps_folder(tmp_path: Path) -> None:
    b, z_nested, z_top = sweep(tmp_path / "b"), sweep(tmp_path / "sweeps" / "z"), sweep(tmp_path / "z")
    (tmp_path / "not_a_sweep").mkdir()
    (tmp_path / "sweeps" / "file").write_text("")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "sweep.toml").mkdir()  # a folder named sweep.toml is no sweep file
    assert sweep_folders(tmp_path) == [b, z_nested, z_top]  # by name, then by path (".../sweeps/z" < ".../z")
    a_nested = sweep(tmp_path / "sweeps" / "a")  # by name first: ".../sweeps/a" before ".../b", though its path sorts after
    assert sweep_folders(tmp_path) == [a_nested, b, z_nested, z_top]
    assert is_sweep_folder(b) and not is_sweep_folder(tmp_path / "c")
    assert sweep_folders(tmp_path / "missing") == []


def test_a_runs_folder_that_cannot_be_listed_still_shows_its_sweeps_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nested = sweep(tmp_path / "sweeps" / "a")
    iterdir = Path.iterdir

    def listing(folder: Path) -> Any:
        if folder == tmp_path:  # a folder one may enter but not list (mode --x)
            raise PermissionError(13, "Permission denied", str(folder))
        return iterdir(folder)

    monkeypatch.setattr(Path, "iterdir", listing)
    assert sweep_folders(tmp_path) == [nested]


def test_a_sweeps_runs_by_label_then_seed_number(tmp_path: Path) -> None:
    folder = sweep(tmp_path / "s")
    for label, seed in (("gat", 10), ("gat", 2), ("base", 1)):
        run(folder / "runs" / label / f"seed-{seed}", label)
    (folder / "runs" / "gat" / "seed-x").mkdir()  # not a seed folder
    (folder / "runs" / "gat" / "seed-3").write_text("")  # a file, not a folder
    run(folder / "runs" / "gat" / "other")
    broken = folder / "runs" / "base" / "seed-0"
    broken.mkdir(parents=True)
    (broken / "config.toml").write_text("name = ")
    found = sweep_runs(folder)
    assert found.name == "s" and found.folder == folder
    assert [found.label(record) for record in found.records] == ["base/seed-1", "gat/seed-2", "gat/seed-10"]
    assert len(found.skipped) == 1 and str(broken / "config.toml") in found.skipped[0]


@dataclass
class Row:
    figures: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.figures


@dataclass
class Done:
    count: int
    results: list[Row]
    clip: bool
    device: str


def test_an_evaluation_file_holds_the_checkpoint_split_count_and_each_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gat_tui.sweep.evaluate as module

    asked: list[tuple[Path, Any]] = []

    def evaluate_checkpoint(checkpoint: Path, options: Any) -> Done:
        asked.append((checkpoint, options))
        return Done(12, [Row({"attack": "clean", "accuracy": 0.5}), Row({"attack": "apgd-ce", "accuracy": 0.25})], False, "cpu")

    monkeypatch.setattr(module, "evaluate_checkpoint", evaluate_checkpoint)
    evaluation = Evaluation("aa", "apgd-ce", (0.5, 1.0), ("gat",), "base", True, "val", 12, "l2", "plus", ("apgd-ce", "apgd-t"))
    out = tmp_path / "evals" / "aa" / "gat" / "seed-0.json"
    out.parent.mkdir(parents=True)
    module.evaluate_run(tmp_path / "best.safetensors", tmp_path / "source.safetensors", evaluation, tmp_path / "data", out)
    ((checkpoint, options),) = asked
    assert checkpoint == tmp_path / "best.safetensors"
    assert (options.attacks, options.eps_values, options.source, options.split, options.limit, options.data_dir, options.match_power) == (
        ("apgd-ce",), (0.5, 1.0), tmp_path / "source.safetensors", "val", 12, tmp_path / "data", True,
    )
    assert (options.autoattack.norm, options.autoattack.version, options.autoattack.stages) == ("l2", "plus", ("apgd-ce", "apgd-t"))
    assert out.read_text().endswith("}\n") and out.read_text().startswith('{\n  "checkpoint"')  # indented, one line per field
    assert json.loads(out.read_text()) == {
        "checkpoint": str(tmp_path / "best.safetensors"),
        "split": "val",
        "n": 12,
        "results": [{"attack": "clean", "accuracy": 0.5}, {"attack": "apgd-ce", "accuracy": 0.25}],
        "clip": False,
        "device": "cpu",
    }
