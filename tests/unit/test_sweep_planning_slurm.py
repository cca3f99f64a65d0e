"""The sweep executors' planning side: dependency levels, Slurm parameters and the sbatch script (no Slurm here)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from gat_tui.sweep.executors import (
    ExecutorError,
    SlurmOptions,
    dependency_levels,
    parse_slurm_time,
    slurm_parameters,
    slurm_scripts,
    submit_slurm,
)
from gat_tui.sweep.jobstate import job_key, write_state
from gat_tui.sweep.plan import load_sweep
from gat_tui.sweep.status import sweep_status


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_levels_put_every_job_after_its_inputs(tmp_path: Path, presets_dir: Path) -> None:
    sweep = load_sweep(
        write(
            tmp_path / "s.toml",
            '''
seeds = 2
[[runs]]
preset = "p"
label = "base"
[[runs]]
preset = "p"
label = "tuned"
tune = { "gat.c_g" = [0.1, 1.0] }
tune_seeds = 2
[[runs]]
preset = "p"
label = "attacker"
attack_target = "tuned"
[[evaluations]]
name = "direct"
attack = "fgm-l2"
runs = ["base"]
[[evaluations]]
name = "indirect"
attack = "fgm-l2"
runs = ["attacker"]
source = "base"
''',
        )
    )
    levels = [sorted(job_key(job) for job in level) for level in dependency_levels(sweep)]
    assert levels[0] == sorted(
        [f"tune--tuned--c_g={value}--seed-{k}" for value in ("0.1", "1.0") for k in (0, 1)] + ["train--base--seed-0", "train--base--seed-1"]
    )
    assert levels[1] == sorted(["train--tuned--seed-0", "train--tuned--seed-1", "eval--direct--base--seed-0", "eval--direct--base--seed-1"])
    assert levels[2] == ["train--attacker--seed-0", "train--attacker--seed-1"]
    assert levels[3] == ["eval--indirect--attacker--seed-0", "eval--indirect--attacker--seed-1"]
    # the shipped sweeps: Table 2 is tuning + baselines, then the repeats with the baselines' two
    # AutoAttack evaluations (L-inf, L2), then the repeats' evaluations; Fig. 2's attackers follow their targets
    table2 = dependency_levels(load_sweep(presets_dir / "paper" / "table2_cifar10.toml"))
    assert [len(level) for level in table2] == [96 + 50, 6 * 50 + 2 * 50, 2 * 6 * 50]
    fig2 = dependency_levels(load_sweep(presets_dir / "paper" / "fig2_cifar10.toml", seeds=1))
    attackers = {level_index for level_index, level in enumerate(fig2) for job in level if job.kind == "train" and job.entry.attack_target}
    targets = {level_index for level_index, level in enumerate(fig2) for job in level if job.kind == "train" and not job.entry.attack_target}
    assert min(attackers) > max(targets)


@pytest.mark.parametrize(("text", "minutes"), [("240", 240), ("04:00:00", 240), ("1-00:00:00", 1440), ("0:30", 30), ("00:10:01", 11), ("1-02", 1560), ("1-02:30", 1590)])
def test_slurm_time_in_minutes(text: str, minutes: int) -> None:
    assert parse_slurm_time(text) == minutes


def test_bad_slurm_settings_are_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ExecutorError, match="expected minutes"):
        parse_slurm_time("two hours")
    with pytest.raises(ExecutorError) as raised:  # seconds round up, but nothing rounds up to a minute
        parse_slurm_time("0")
    assert str(raised.value) == "--slurm-time '0': expected at least one minute"
    base = 'name = "s"\n[[runs]]\npreset = "p"\n[slurm]\n'
    for table, fragment in [
        ("cpus_per_tsk = 4\n", "key 'slurm.cpus_per_tsk' is not a submitit Slurm parameter; expected one of: account,"),
        ('cpus_per_task = "four"\n', "key 'slurm.cpus_per_task' = 'four' is not allowed; expected a whole number"),
        ('setup = "module load cuda"\n', "key 'slurm.setup' = 'module load cuda' is not allowed; expected a list of strings"),
        ('dependency = "afterok:1"\n', "key 'slurm.dependency' cannot be set here: set by gat-tui"),
    ]:
        path = write(tmp_path / "s.toml", base + table)
        with pytest.raises(ExecutorError) as raised:
            slurm_parameters(load_sweep(path), SlurmOptions())
        assert fragment in str(raised.value) and str(path) in str(raised.value)
    with pytest.raises(ExecutorError, match="--array-parallelism 0"):
        slurm_parameters(load_sweep(write(tmp_path / "t.toml", base)), SlurmOptions(array_parallelism=0))


def test_the_sbatch_scripts_of_table_2(tmp_path: Path, presets_dir: Path) -> None:
    sweep = load_sweep(presets_dir / "paper" / "table2_cifar10.toml")
    sweep.slurm.update({"cpus_per_task": 4, "setup": ["module load cuda"], "time": "02:00:00"})
    options = SlurmOptions(partition="gpu", time="1-00:00:00", gpus_per_task=1, array_parallelism=64)
    scripts = slurm_scripts(sweep, tmp_path / "out", options)
    assert [count for count, _ in scripts] == [146, 400, 600]  # see test_levels_put_every_job_after_its_inputs
    first, second, third = (script for _, script in scripts)
    for script, count, name in ((first, 146, "L0"), (second, 400, "L1"), (third, 600, "L2")):
        lines = script.splitlines()
        assert "#SBATCH --partition=gpu" in lines and "#SBATCH --time=1440" in lines  # the command line beats [slurm]
        assert "#SBATCH --gpus-per-task=1" in lines and "#SBATCH --cpus-per-task=4" in lines
        assert f"#SBATCH --array=0-{count - 1}%64" in lines
        assert f"#SBATCH --job-name=gat-tui-table2_cifar10-{name}" in lines
        assert "#SBATCH --signal=USR2@90" in lines  # submitit's requeue signal, 90 s before the limit
        assert "module load cuda" in lines and re.search(r"-m submitit\.core\._submit \S*out/submitit/%j$", script.strip())
    assert not any(line.startswith("#SBATCH --dependency") for line in first.splitlines())
    assert "#SBATCH --dependency='afterany:<array job id of level 0>'" in second.splitlines()
    assert "#SBATCH --dependency='afterany:<array job id of level 1>'" in third.splitlines()
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_a_short_time_limit_gets_its_signal_late_enough_to_be_caught(tmp_path: Path) -> None:
    # a real Slurm sends SIGUSR2 at its first 30 s check once `signal_delay_s` is left: 90 s before
    # a one-minute limit came 4 s after the start, before the job could catch it, and killed it
    base = 'name = "s"\n[[runs]]\npreset = "p"\n'
    sweep = load_sweep(write(tmp_path / "s.toml", base))
    times = ("1", "2", "3", "4", "12:00:00")
    delays = {time: slurm_parameters(sweep, SlurmOptions(time=time))["signal_delay_s"] for time in times}
    assert delays == {"1": 5, "2": 30, "3": 60, "4": 90, "12:00:00": 90}  # signalled 25-55 s, 60-90 s, ... into the job
    script = slurm_scripts(sweep, tmp_path / "out", SlurmOptions(time="1"))[0][1]
    assert "#SBATCH --signal=USR2@5" in script.splitlines() and "#SBATCH --time=1" in script.splitlines()
    assert not [line for line in script.splitlines() if line.startswith("#SBATCH --array")]  # one job: no array
    pair = slurm_scripts(load_sweep(write(tmp_path / "s.toml", base), seeds=2), tmp_path / "out", SlurmOptions(time="1"))[0][1]
    assert [line for line in pair.splitlines() if line.startswith("#SBATCH --array")] == ["#SBATCH --array=0-1%2"]  # two: an array
    assert "signal_delay_s" not in slurm_parameters(sweep, SlurmOptions())  # no limit given: submitit's own
    chosen = load_sweep(write(tmp_path / "t.toml", base + "[slurm]\nsignal_delay_s = 50\n"))
    assert slurm_parameters(chosen, SlurmOptions(time="1"))["signal_delay_s"] == 50  # the table's value wins


def test_max_num_timeout_goes_to_the_executor_not_to_sbatch(tmp_path: Path) -> None:
    from submitit.slurm.test_slurm import mocked_slurm  # submitit's own stand-in for sbatch

    sweep_file = write(tmp_path / "s.toml", 'name = "s"\n[[runs]]\npreset = "synthetic_smoke"\n[slurm]\nmax_num_timeout = 12\n')
    sweep = load_sweep(sweep_file, seeds=1)
    made: list[object] = []

    def factory(folder: Path) -> object:
        from submitit import SlurmExecutor

        made.append(SlurmExecutor(folder=folder))
        return made[-1]

    with mocked_slurm():
        submit_slurm(sweep, tmp_path / "out", SlurmOptions(), executor_factory=factory)
    assert [executor.max_num_timeout for executor in made] == [12]  # type: ignore[attr-defined]
    script = slurm_scripts(sweep, tmp_path / "dry", SlurmOptions())[0][1]
    assert not [line for line in script.splitlines() if line.startswith("#SBATCH --max")]
    bad = load_sweep(write(tmp_path / "t.toml", 'name = "t"\n[[runs]]\npreset = "p"\n[slurm]\nmax_num_timeout = "many"\n'))
    with pytest.raises(ExecutorError, match="key 'slurm.max_num_timeout' = 'many' is not allowed; expected a whole number"):
        slurm_parameters(bad, SlurmOptions())


def test_status_of_a_slurm_sweep_asks_the_queue_about_jobs_the_files_call_queued(
    tmp_path: Path, tiny_sweep: Callable[[Path], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gat_tui.runs.folder import RunPaths
    from gat_tui.sweep.jobstate import write_submitted
    from gat_tui.sweep.runner import SweepRunner

    sweep = load_sweep(tiny_sweep(tmp_path), seeds=1)
    out = tmp_path / "out"
    runner = SweepRunner(sweep, out)
    runner.prepare("slurm")
    planned = runner.jobs  # baseline, gat, then their two evaluations
    write_submitted(out, "slurm", 1, {job_key(job): f"7_{index}" for index, job in enumerate(planned)})
    for job in planned:
        write_state(out, job, job_key(job), "queued", "submitted to Slurm (level 0)")
    write_state(out, planned[1], job_key(planned[1]), "requeued", "checkpointed and requeued")
    checkpoint = RunPaths(runner.layout.job_run_dir(planned[1])).last_checkpoint
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"")
    queue = {"7_0": ("PENDING", "Dependency"), "7_3": ("RUNNING", "None")}  # 7_1 and 7_2 were cancelled while pending
    monkeypatch.setattr("gat_tui.sweep.status.slurm_queue", lambda: queue)
    status = {job.job_id: (job.state, job.message) for job in sweep_status(out).jobs}
    assert status["7_0"] == ("queued", "submitted to Slurm (level 0); Slurm: pending (Dependency)")
    assert status["7_3"] == ("queued", "submitted to Slurm (level 0); Slurm: running")
    gone = "not in Slurm's queue any more (cancelled before it ran?); run the sweep again to go on"
    assert status["7_1"] == ("stopped", gone)  # requeued, then cancelled: its checkpoint is there to resume
    assert status["7_2"] == ("not started", gone)
    monkeypatch.setattr("gat_tui.sweep.status.slurm_queue", lambda: None)  # squeue cannot be asked: the files decide
    assert sweep_status(out).counts() == {"queued": 4}


def test_status_reads_state_files_and_run_folders(
    tmp_path: Path, tiny_sweep: Callable[[Path], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gat_tui.sweep.runner import SweepRunner

    monkeypatch.setattr("gat_tui.sweep.status.slurm_queue", lambda: None)  # the files alone, whatever Slurm runs here

    sweep = load_sweep(tiny_sweep(tmp_path), seeds=1)
    out = tmp_path / "out"
    runner = SweepRunner(sweep, out)
    runner.prepare("slurm")
    planned = runner.jobs
    for job in planned:
        write_state(out, job, job_key(job), "queued")
    counts = sweep_status(out).counts()
    assert counts == {"queued": 4}  # the submitter is gone, but Slurm's queue outlives it
    runner.run_job(planned[0])  # baseline seed 0 trains here
    elsewhere = {"job": "gat seed 0", "key": job_key(planned[1]), "state": "running", "host": "another-host", "pid": 1}
    (out / "jobs" / f"{job_key(planned[1])}.json").write_text(json.dumps(elsewhere))
    write_state(out, planned[2], "eval", "failed", "broke")
    status = {job.job: (job.state, job.message) for job in sweep_status(out).jobs}
    assert status["baseline seed 0"] == ("done", "")
    assert status["gat seed 0"][0] == "running"  # on another host: the state file is all there is
    assert status["eval fgm of baseline seed 0"] == ("failed", "broke")
    assert status["eval fgm of gat seed 0"][0] == "queued"
    # `running` by a process of this host that is gone (killed) is not believed
    gone = subprocess.Popen(["true"])
    gone.wait()
    here = dict(elsewhere, host=socket.gethostname(), pid=gone.pid)
    (out / "jobs" / f"{job_key(planned[1])}.json").write_text(json.dumps(here))
    state, message = {job.job: (job.state, job.message) for job in sweep_status(out).jobs}["gat seed 0"]
    assert state == "not started" and "is gone" in message
