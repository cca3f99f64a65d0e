"""A sweep's `tune_metric`: its tuning runs select (and so report best_value) on that validation
figure, the choice file names it, and the report says which rule chose each run's checkpoint."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import TinySweep

from gat_tui.config import ConfigError
from gat_tui.console.sweep_report import markdown
from gat_tui.sweep.plan import load_sweep
from gat_tui.sweep.report import build_report
from gat_tui.sweep.tuning import choose, tuning_run_dir

SWEEP = """
name = "t"
[[runs]]
preset = "synthetic_smoke"
label = "plain"
set = ["method=baseline"]
[[runs]]
preset = "synthetic_smoke"
label = "robust"
tune = { "gat.c_g" = [0.1, 0.2] }
tune_seeds = 1
tune_metric = "val_acc_pgd"
"""


def write_summary(run_dir: Path, best: float, select_best_by: str | None, clean: float = 0.5) -> None:
    run_dir.mkdir(parents=True)
    record = {"status": "finished", "best_value": best, "test_acc_clean": clean, "test_acc_adv": None, "test_acc_fgm_l2": 0.25}
    if select_best_by is not None:
        record["select_best_by"] = select_best_by
    (run_dir / "summary.json").write_text(json.dumps(record))


def test_tuning_runs_train_with_the_tune_metric_as_their_selection_and_the_choice_names_it(tmp_path: Path) -> None:
    (tmp_path / "sweep.toml").write_text(SWEEP)
    sweep = load_sweep(tmp_path / "sweep.toml")
    plain, robust = sweep.runs
    assert plain.tune_metric is None and robust.tune_metric == "val_acc_pgd"
    assert robust.tuning_overrides(robust.tuning[0]) == ("gat.c_g=0.1", "train.select_best_by=val_acc_pgd")
    # the tuning figure is each run's best_value, which select_best_by made the PGD figure
    write_summary(tuning_run_dir(tmp_path, "robust", robust.tuning[0].name, 0), 0.30, "val_acc_pgd")
    write_summary(tuning_run_dir(tmp_path, "robust", robust.tuning[1].name, 0), 0.45, "val_acc_pgd")
    tuning = choose(tmp_path, robust)
    assert tuning.chosen == robust.tuning[1].name and tuning.metric == "val_acc_pgd"
    assert "val_acc_pgd" in tuning.rule and "PGD" in tuning.rule
    # the repeat runs take the chosen point only: their selection stays the preset's
    assert tuning.chosen_overrides == ("gat.c_g=0.2",)


def test_without_tune_metric_the_rule_is_the_tuning_runs_own_selection(tmp_path: Path) -> None:
    (tmp_path / "sweep.toml").write_text(SWEEP.replace('tune_metric = "val_acc_pgd"\n', ""))
    robust = load_sweep(tmp_path / "sweep.toml").runs[1]
    assert robust.tuning_overrides(robust.tuning[0]) == ("gat.c_g=0.1",)
    write_summary(tuning_run_dir(tmp_path, "robust", robust.tuning[0].name, 0), 0.9, None)  # a summary of before select_best_by
    write_summary(tuning_run_dir(tmp_path, "robust", robust.tuning[1].name, 0), 0.8, None)
    tuning = choose(tmp_path, robust)
    assert tuning.metric == "val_acc_clean" and "clean: val_acc_clean" in tuning.rule


def test_the_report_says_which_rule_chose_each_runs_checkpoint_and_each_tuned_setting(tmp_path: Path) -> None:
    (tmp_path / "sweep.toml").write_text(SWEEP)
    robust = load_sweep(tmp_path / "sweep.toml").runs[1]
    write_summary(tmp_path / "runs" / "plain" / "seed-0", 0.9, None)
    write_summary(tmp_path / "runs" / "robust" / "seed-0", 0.4, "val_acc_fgm_l2")
    for index, point in enumerate(robust.tuning):
        write_summary(tuning_run_dir(tmp_path, "robust", point.name, 0), 0.3 + index / 10, "val_acc_pgd")
    report = build_report(tmp_path)
    assert [(row.label, row.selected_by) for row in report.table] == [("plain", "val_acc_clean"), ("robust", "val_acc_fgm_l2")]
    text = markdown(report)
    assert "| tuned | chosen by |" in text  # two rules: a column
    assert re.search(r"\| robust \|.*\| val_acc_fgm_l2 \|", text)
    assert "compared on val_acc_pgd" in text


def test_one_rule_for_every_run_is_said_once_under_the_table(tmp_path: Path) -> None:
    (tmp_path / "sweep.toml").write_text(SWEEP.replace('tune_metric = "val_acc_pgd"\n', ""))
    write_summary(tmp_path / "runs" / "plain" / "seed-0", 0.9, None)
    write_summary(tmp_path / "runs" / "robust" / "seed-0", 0.4, "val_acc_clean")
    text = markdown(build_report(tmp_path))
    assert "chosen by |" not in text
    assert "checkpoints chosen by val_acc_clean (the best epoch's; train.select_best_by)." in text


def test_tune_metric_without_a_tune_grid_and_an_unknown_metric_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[[runs]]\npreset = "x"\ntune_metric = "val_acc_pgd"\n')
    with pytest.raises(ConfigError, match=re.escape("'runs[0].tune_metric' = 'val_acc_pgd' is not allowed; expected no tune_metric without a tune grid")):
        load_sweep(path)
    path.write_text('[[runs]]\npreset = "x"\ntune = { "gat.c_g" = [1] }\ntune_metric = "test_acc"\n')
    with pytest.raises(ConfigError, match=re.escape("'runs[0].tune_metric' = 'test_acc' is not allowed; expected one of val_acc_clean, val_acc_fgm_l2, val_acc_pgd")):
        load_sweep(path)


@pytest.mark.slow
def test_a_sweep_with_tune_metric_trains_its_tuning_runs_selecting_on_validation_pgd(tmp_path: Path, tiny_sweep: TinySweep) -> None:
    from gat_tui.sweep.runner import SweepRunner

    path = tiny_sweep(
        tmp_path, seeds=1, tail="",
        runs=(("gat", 'set = ["eval.pgd_steps=2", "eval.pgd_images=16"]\ntune = { "gat.lr_g" = [1e-6, 1e-2] }\ntune_seeds = 1\ntune_metric = "val_acc_pgd"'),),
    )
    sweep = load_sweep(path)
    out = tmp_path / "out"
    assert SweepRunner(sweep, out).run() == "finished"
    for point in sweep.runs[0].tuning:
        run_dir = tuning_run_dir(out, "gat", point.name, 0)
        summary = json.loads((run_dir / "summary.json").read_text())
        epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if '"epoch"' in line]
        pgd = [record["val_acc_pgd"] for record in epochs if record.get("event") == "epoch"]
        assert summary["select_best_by"] == "val_acc_pgd" and summary["best_value"] == max(pgd)
    repeat = json.loads((out / "runs" / "gat" / "seed-0" / "summary.json").read_text())
    assert repeat["select_best_by"] == "val_acc_clean"  # the repeat runs keep the preset's selection
    choice = json.loads((out / "tuning" / "gat.json").read_text())
    assert choice["metric"] == "val_acc_pgd"
