"""Sweeps: planning, resumable and sharded running, and the report's mean ± std."""

from __future__ import annotations

import json
import re
import statistics
import threading
from pathlib import Path

import pytest
from conftest import Cli, TinySweep

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
        ('[[runs]]\npreset = "x"\n[[evaluations]]\nattack = "fgsm"\nnorm = "l2"\n', "'evaluations[0].norm' = 'l2' is not allowed; expected no norm with attack 'fgsm'"),
        ('[[runs]]\npreset = "x"\n[[evaluations]]\nattack = "autoattack"\nnorm = "l1"\n', "'evaluations[0].norm' = 'l1' is not allowed; expected one of linf, l2"),
        ('[[runs]]\npreset = "x"\n[[evaluations]]\nattack = "apgd-ce"\nversion = "plus"\n', "'evaluations[0].version' = 'plus' is not allowed; expected no version with attack 'apgd-ce'"),
        ('[[runs]]\npreset = "x"\n[[evaluations]]\nattack = "autoattack"\nversion = "custom"\n', "'evaluations[0].version' = 'custom' is not allowed; expected with aa_attacks"),
        ('[[runs]]\npreset = "x"\n[[evaluations]]\nattack = "autoattack"\naa_attacks = ["square"]\n', "'evaluations[0].aa_attacks' = ['square'] is not allowed; expected only with"),
        ('[[runs]]\npreset = "x"\n[[evaluations]]\nattack = "autoattack"\nversion = "custom"\naa_attacks = ["cw"]\n', "'evaluations[0].aa_attacks[0]' = 'cw' is not allowed; expected one of apgd-ce"),
        ('[[runs]]\npreset = "x"\n[[evaluations]]\nattack = "autoattack"\nversion = "fast"\n', "'evaluations[0].version' = 'fast'"),
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


def test_interrupted_and_sharded_sweeps_give_the_same_table(tmp_path: Path, tiny_sweep: TinySweep) -> None:
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


def test_sweep_and_report_commands(tmp_path: Path, cli: Cli, tiny_sweep: TinySweep) -> None:
    out = tmp_path / "out"
    result = cli("sweep", str(tiny_sweep(tmp_path)), "--headless", "--out", str(out), "--seeds", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sweep finished" in result.stdout
    report = cli("report", str(out), "--markdown", str(tmp_path / "t.md"), "--json", str(tmp_path / "t.json"))
    assert report.returncode == 0, report.stderr
    assert "baseline" in report.stdout and "±" in report.stdout and "over 2 seeds" in report.stdout  # n once, in the title
    assert "| gat |" in (tmp_path / "t.md").read_text()
    assert json.loads((tmp_path / "t.json").read_text())["table"][0]["label"] == "baseline"
    (tmp_path / "empty").mkdir()
    missing = cli("report", str(tmp_path / "empty"))
    assert missing.returncode == 2 and "not a sweep folder" in missing.stderr


def write_tuned_sweep(folder: Path, tiny_sweep: TinySweep) -> Path:
    """The tiny preset: a baseline, and GAT tuned over 2 generator learning rates x 2 tuning seeds, 2 repeat seeds."""
    return tiny_sweep(
        folder, file="tuned.toml", name="tuned_sweep",
        runs=(("baseline", 'set = ["method=baseline"]'), ("gat", 'tune = { "gat.lr_g" = [1e-6, 1e-2] }\ntune_seeds = 2')),
        tail='''
[paper]
baseline = { mean = 0.7748, std = 0.0046, n = 50 }
gat = { mean = 0.8033, std = 0.0044, n = 50 }
''',
    )


def test_two_stage_sweep_tunes_then_repeats_sharded(tmp_path: Path, tiny_sweep: TinySweep, cli: Cli) -> None:
    sweep = load_sweep(write_tuned_sweep(tmp_path, tiny_sweep))
    gat = sweep.runs[1]
    assert [point.name for point in gat.tuning] == ["lr_g=1e-06", "lr_g=0.01"] and gat.tune_seeds == 2
    planned = jobs(sweep)
    assert [job.kind for job in planned[:4]] == ["tune"] * 4 and len(planned) == 4 + 2 * 2
    out = tmp_path / "out"
    # shard 1 first: it trains tuning seed 1, but its repeat run needs tuning seed 0 (shard 0's)
    progress: list[SweepProgress] = []
    assert SweepRunner(sweep, out, 1, 2, on_progress=progress.append).run() == "waiting"
    waiting = [p for p in progress if p.state == "waiting"]
    assert len(waiting) == 1 and "gat seed 1" in waiting[0].job and "2 of 4 tuning runs of gat have not finished" in waiting[0].message
    assert SweepRunner(sweep, out, 0, 2).run() == "finished"
    assert SweepRunner(sweep, out, 1, 2).run() == "finished"
    choice = json.loads((out / "tuning" / "gat.json").read_text())
    assert "listed first" in choice["tie_break"] and "best_value" in choice["rule"]
    values = {point["point"]: point["mean"] for point in choice["points"]}
    best = "lr_g=0.01" if values["lr_g=0.01"] > values["lr_g=1e-06"] else "lr_g=1e-06"
    assert choice["chosen"] == best and choice["seeds"] == [1_000_000, 1_000_001]
    config = (out / "runs" / "gat" / "seed-0" / "config.toml").read_text()
    assert f"lr_g = {0.01 if best == 'lr_g=0.01' else 1e-06}" in config
    # re-running skips everything; the choice is recomputed from the finished tuning runs
    again: list[SweepProgress] = []
    assert SweepRunner(sweep, out, on_progress=again.append).run() == "finished"
    assert {p.state for p in again if p.state != "running"} == {"skipped"}

    report = build_report(out)
    row = report.table[1]
    assert row.tuned == best and row.test_acc_clean.n == 2
    assert row.paper_z == pytest.approx((row.test_acc_clean.mean - 0.8033) / 0.0044)
    assert report.order_paper == ["gat", "baseline"] and sorted(report.order_ours) == ["baseline", "gat"]
    assert [p.finished for p in report.tuning[0].points] == [2, 2]
    text = markdown(report)
    assert "Tuning gat" in text and "chosen" in text and "paper std" in text
    printed = cli("report", str(out), "--json", str(tmp_path / "r.json"), env={"COLUMNS": "200"})
    assert printed.returncode == 0, printed.stderr
    assert "tuning gat" in printed.stdout and "80.33 ± 0.44" in printed.stdout and "over 50 runs" in printed.stdout and "ordering" in printed.stdout
    assert json.loads((tmp_path / "r.json").read_text())["tuning"][0]["chosen"] == best


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[[runs]]\npreset = "x"\ntune = { "gat.c_g" = [1] }\ngrid = { "gat.k" = [1] }\n', "either a grid"),
        ('[[runs]]\npreset = "x"\n[[runs]]\npreset = "y"\nattack_target = "x"\ntune = { "gat.c_g" = [1] }\n', "no tune with attack_target"),
        ('[[runs]]\npreset = "x"\ntune = { "gat.c_g" = [0.01, 0.01] }\n', "they name folders"),
        ('[[runs]]\npreset = "x"\ntune = { "gat.c_g" = [1] }\ntune_seeds = 0\n', "'runs[0].tune_seeds' = 0"),
    ],
)
def test_bad_tuning_entries_are_refused(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_sweep(path)


@pytest.mark.slow
def test_sweep_with_autoattack_evaluations_runs_them_as_eval_does_and_reports_them(
    tmp_path: Path, tiny_sweep: TinySweep
) -> None:
    pytest.importorskip("pyautoattack", reason='pyautoattack is not installed: pip install -e ".[autoattack]"')
    from gat_tui.robustness.evaluate import evaluate_checkpoint
    from gat_tui.robustness.options import EvalOptions
    from gat_tui.robustness.plan import AutoAttackOptions
    from gat_tui.runs.folder import RunPaths

    # the cheapest AutoAttack: one APGD-CE stage, on 8 test images of 8x8 pixels
    path = tiny_sweep(tmp_path, file="aa.toml", name="aa_sweep", seeds=1, runs=(("gat", 'set = ["train.epochs=1"]'),), tail='''
[[evaluations]]
name = "aa-linf"
attack = "autoattack"
norm = "linf"
eps = [0.15]
version = "custom"
aa_attacks = ["apgd-ce"]
limit = 8
[[evaluations]]
attack = "apgd-ce"
norm = "l2"
eps = [0.5]
limit = 8
''')
    sweep = load_sweep(path)
    out = tmp_path / "out"
    assert SweepRunner(sweep, out).run() == "finished"
    record = json.loads((out / "evals/aa-linf/gat/seed-0.json").read_text())
    auto = record["results"][1]
    assert (auto["attack"], auto["norm"], auto["version"], auto["n"], record["n"]) == ("autoattack", "linf", "custom", 8, 8)
    assert [stage["attack"] for stage in auto["stages"]] == ["apgd-ce"] and auto["pert_linf"] <= 0.15 + 1e-6
    apgd = json.loads((out / "evals/apgd-ce-1/gat/seed-0.json").read_text())["results"][1]
    assert (apgd["attack"], apgd["norm"], apgd["eps"], apgd["n"]) == ("apgd-ce", "l2", 0.5, 8)

    # the same figures as `gat-tui eval` gives for the same checkpoint and options
    checkpoint = RunPaths(out / "runs/gat/seed-0").best_checkpoint
    direct = evaluate_checkpoint(checkpoint, EvalOptions(attacks=("autoattack:0.15",), limit=8, device_name="cpu",
                                                         autoattack=AutoAttackOptions("linf", "custom", ("apgd-ce",))))
    assert direct.results[1].to_json() == {**auto, "stages": auto["stages"]}

    report = build_report(out)
    shown = {(p.evaluation, p.attack_text, p.eps) for p in report.curves if p.attack != "clean"}
    assert shown == {("aa-linf", "autoattack (linf, custom, 8 images)", 0.15), ("apgd-ce-1", "apgd-ce (l2, 8 images)", 0.5)}
    text = markdown(report)  # one pivoted table per evaluation: the attack in its title, ε as columns
    assert "Evaluation aa-linf: accuracy (%) under autoattack (linf, custom, 8 images), mean ± std over one seed." in text
    assert "| run \\ ε | clean | 0.15 |" in text


def test_a_sweep_with_autoattack_is_refused_before_training_without_pyautoattack(
    presets_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    import typer

    from gat_tui.cli.sweeps import _require_extras

    path = presets_dir / "paper" / "fig3_cifar10.toml"
    _require_extras(path, load_sweep(presets_dir / "paper" / "smoke_sweep.toml"))  # no AutoAttack: nothing needed
    monkeypatch.setitem(sys.modules, "pyautoattack", None)  # `import pyautoattack` now fails, as when it is missing
    with pytest.raises(typer.Exit) as raised:
        _require_extras(path, load_sweep(path))
    assert raised.value.exit_code == 2
    message = capsys.readouterr().err
    assert f"{path}: evaluations[1] (autoattack-linf): --attack autoattack needs the pyautoattack package" in message
    assert 'pip install -e ".[autoattack]"' in message
