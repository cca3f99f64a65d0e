"""Sweeps: planning, resumable and sharded running, and the report's mean ± std."""

from __future__ import annotations

import json
import statistics
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Cli

from gat_tui.config import ConfigError
from gat_tui.console.sweep_report import markdown
from gat_tui.sweep.plan import jobs, load_sweep, parse_shard
from gat_tui.sweep.report import build_report
from gat_tui.sweep.runner import SweepProgress, SweepRunner


def table_of(folder: Path) -> list[tuple]:
    return [(row.label, row.test_acc_clean, row.test_acc_adv, row.test_acc_fgm_l2) for row in build_report(folder).table]


def test_shipped_sweeps_load_and_plan(presets_dir: Path) -> None:
    for path in sorted((presets_dir / "paper").glob("*.toml")):
        sweep = load_sweep(path)
        assert sweep.runs and jobs(sweep)
    table2 = load_sweep(presets_dir / "paper" / "table2_cifar10.toml")
    assert table2.seeds == 50 and len(table2.runs) == 7
    fig2 = load_sweep(presets_dir / "paper" / "fig2_cifar100.toml", seeds=2)
    attackers = [entry for entry in fig2.runs if entry.attack_target]
    assert len(attackers) == 5 and attackers[0].label == "cifar100_gat_attack-c_g=0.001"
    assert "gat.c_g=0.001" in attackers[0].overrides
    smoke = load_sweep(presets_dir / "paper" / "smoke_sweep.toml")
    assert len(jobs(smoke)) == 3 * 2 + 3 * 2
    shard0, shard1 = jobs(smoke, 0, 2), jobs(smoke, 1, 2)
    assert {job.seed for job in shard0} == {0} and {job.seed for job in shard1} == {1}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[[runs]]\npreset = "x"\nfoo = 1\n', "unknown key 'runs[0].foo'"),
        ("seeds = 0\n[[runs]]\npreset = 'x'\n", "'seeds' = 0"),
        ('[[runs]]\npreset = "x"\n[[evaluations]]\nattack = "cw"\n', "'evaluations[0].attack' = 'cw'"),
        ('[[runs]]\npreset = "x"\n[[evaluations]]\nattack = "fgsm"\nruns = ["y"]\n', "labels of this sweep's runs: x"),
        ('[[runs]]\npreset = "x"\nattack_target = "x"\n', "a run listed before it"),
        ('name = "n"\n', "at least one [[runs]]"),
    ],
)
def test_bad_sweeps_are_refused(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_sweep(path)
    assert fragment in str(raised.value) and str(path) in str(raised.value)
    with pytest.raises(ConfigError, match="expected I/N"):
        parse_shard("2")


def test_interrupted_and_sharded_sweeps_give_the_same_table(tmp_path: Path, tiny_sweep: Callable[[Path], Path]) -> None:
    sweep = load_sweep(tiny_sweep(tmp_path))
    straight = tmp_path / "straight"
    assert SweepRunner(sweep, straight).run() == "finished"
    table = table_of(straight)
    baseline = table[0]
    assert baseline[0] == "baseline" and baseline[1].n == 2
    accuracies = [json.loads((straight / f"runs/baseline/seed-{s}/summary.json").read_text())["test_acc_clean"] for s in (0, 1)]
    assert baseline[1].mean == pytest.approx(statistics.fmean(accuracies))
    assert baseline[1].std == pytest.approx(statistics.stdev(accuracies))
    assert baseline[2].n == 0 and table[1][2].n == 2  # the baseline has no own perturbation

    # stop inside the first training, then run the sweep again: it resumes and skips
    interrupted = tmp_path / "interrupted"
    stop = threading.Event()
    progress: list[SweepProgress] = []

    def subscribers_for(job):  # type: ignore[no-untyped-def]
        from gat_tui.events import StepMetrics

        return [lambda event: stop.set() if isinstance(event, StepMetrics) and event.step >= 4 else None]

    assert SweepRunner(sweep, interrupted, stop=stop, subscribers_for=subscribers_for).run() == "stopped"
    assert SweepRunner(sweep, interrupted, on_progress=progress.append).run() == "finished"
    assert table_of(interrupted) == table
    states = [p.state for p in progress if p.state != "running"]
    assert states.count("skipped") == 0 and states.count("finished") == len(jobs(sweep))
    again: list[SweepProgress] = []
    SweepRunner(sweep, interrupted, on_progress=again.append).run()
    assert {p.state for p in again if p.state != "running"} == {"skipped"}

    # two shards into one folder merge into the same table
    sharded = tmp_path / "sharded"
    assert SweepRunner(sweep, sharded, 0, 2).run() == "finished"
    assert [row[1].n for row in table_of(sharded)] == [1, 1]
    assert SweepRunner(sweep, sharded, 1, 2).run() == "finished"
    assert table_of(sharded) == table
    report = build_report(sharded)
    fgm = [p for p in report.curves if p.attack == "fgm-l2" and p.label == "gat"]
    assert sorted(p.eps for p in fgm) == [0.5, 1.0] and all(p.accuracy.n == 2 for p in fgm)
    assert "± " in markdown(report)


def test_sweep_and_report_commands(tmp_path: Path, cli: Cli, tiny_sweep: Callable[[Path], Path]) -> None:
    out = tmp_path / "out"
    result = cli("sweep", str(tiny_sweep(tmp_path)), "--headless", "--out", str(out), "--seeds", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sweep finished" in result.stdout
    report = cli("report", str(out), "--markdown", str(tmp_path / "t.md"), "--json", str(tmp_path / "t.json"))
    assert report.returncode == 0, report.stderr
    assert "baseline" in report.stdout and "±" in report.stdout and "(n=2)" in report.stdout
    assert "| gat |" in (tmp_path / "t.md").read_text()
    assert json.loads((tmp_path / "t.json").read_text())["table"][0]["label"] == "baseline"
    (tmp_path / "empty").mkdir()
    missing = cli("report", str(tmp_path / "empty"))
    assert missing.returncode == 2 and "not a sweep folder" in missing.stderr
