"""Sweeps through submitit: local processes, the debug executor and a Slurm submission (sbatch mocked by
submitit's own test helper) give the sequential sweep's report; preempted and killed jobs resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from conftest import SCRIPT, Cli, TinySweep
from safetensors.torch import load_file

from gat_tui.sweep.executors import LocalSweep, SlurmOptions, cpu_threads_per_job, submit_slurm
from gat_tui.sweep.jobstate import read_state, read_submitted
from gat_tui.sweep.plan import jobs, load_sweep
from gat_tui.sweep.report import build_report
from gat_tui.sweep.runner import SweepRunner
from gat_tui.sweep.status import sweep_status


def figures(folder: Path) -> tuple[list, list]:
    """The report's table and curves: every figure `gat-tui report` prints."""
    report = build_report(folder)
    table = [(row.label, row.test_acc_clean, row.test_acc_adv, row.test_acc_fgm_l2) for row in report.table]
    curves = sorted((point.label, point.attack, point.eps, point.accuracy) for point in report.curves)
    return table, curves


def test_local_and_debug_executors_give_the_sequential_report(tmp_path: Path, tiny_sweep: TinySweep) -> None:
    sweep = load_sweep(tiny_sweep(tmp_path), seeds=1)
    assert SweepRunner(sweep, tmp_path / "sequential").run() == "finished"
    expected = figures(tmp_path / "sequential")
    assert expected[0][0][1].n == 1 and len(expected[1]) == 6  # 2 runs x (clean + 2 eps)

    assert LocalSweep(sweep, tmp_path / "debug", "debug").run() == "finished"
    assert figures(tmp_path / "debug") == expected

    progress: list[str] = []
    local = LocalSweep(sweep, tmp_path / "local", "local", at_once=2, on_progress=lambda p: progress.append(f"{p.state} {p.job}"))
    assert local.run() == "finished"
    assert figures(tmp_path / "local") == expected
    # the two trainings went first, each in its own process, then the evaluations
    assert [line.split()[0] for line in progress[:2]] == ["running", "running"] and all("eval" not in line for line in progress[:4])
    ids = read_submitted(tmp_path / "local")["ids"]
    assert len(ids) == 4 and len(set(ids.values())) == 4
    assert sweep_status(tmp_path / "local").counts() == {"done": 4}
    # run again: nothing left to do, nothing submitted
    again: list[str] = []
    assert LocalSweep(sweep, tmp_path / "local", "local", at_once=2, on_progress=lambda p: again.append(p.job)).run() == "finished"
    assert again == []


def test_cpu_jobs_side_by_side_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert [cpu_threads_per_job(n, on_gpus=False) for n in (2, 3, 8, 16)] == [4, 2, 1, 1]
    assert cpu_threads_per_job(1, on_gpus=False) is None  # one job: torch's own default
    assert cpu_threads_per_job(2, on_gpus=True) is None
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's setting applies to every job
    assert cpu_threads_per_job(2, on_gpus=False) is None


def test_each_local_cpu_job_process_gets_its_share_of_the_cores(
    tmp_path: Path, tiny_sweep: TinySweep, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    monkeypatch.setattr("gat_tui.sweep.executors.visible_gpus", lambda: [])
    sweep = load_sweep(tiny_sweep(tmp_path), seeds=1)
    local = LocalSweep(sweep, tmp_path / "local", "local", at_once=2)

    class Recording:
        setups: list[list[str]] = []

        def update_parameters(self, **parameters: object) -> None:
            self.setups.append(list(parameters["setup"]))  # type: ignore[call-overload]

        def submit(self, job: object) -> object:
            return type("Handle", (), {"job_id": "1"})()

    executor = Recording()
    local._submit(executor, jobs(sweep)[0], slot=1)
    assert executor.setups == [["export CUDA_VISIBLE_DEVICES=''", "export OMP_NUM_THREADS=2"]]


@contextmanager
def slurm_task(array: str, task: int) -> Iterator[None]:
    """The environment of Slurm array task `array`_`task`, and signal handlers restored after (submitit sets some)."""
    variables = {
        "SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": f"{int(array) + 100 + task}", "SLURM_ARRAY_JOB_ID": array,
        "SLURM_ARRAY_TASK_ID": str(task), "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
        "SLURM_NTASKS": "1", "SLURM_JOB_NUM_NODES": "1", "SLURM_JOB_NODELIST": "node1",
    }
    saved = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGCONT, signal.SIGUSR1, signal.SIGUSR2)}
    before = dict(os.environ)
    os.environ.update(variables)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)
        for number, handler in saved.items():
            signal.signal(number, handler)


def test_slurm_submission_chains_levels_and_its_tasks_give_the_sequential_report(
    tmp_path: Path, tiny_sweep: TinySweep, monkeypatch: pytest.MonkeyPatch
) -> None:
    from submitit.core.submission import process_job
    from submitit.slurm.test_slurm import mocked_slurm  # submitit's own stand-in for sbatch and srun

    # no real queue holds the mocked job ids (a real squeue on this machine would say they left it)
    monkeypatch.setattr("gat_tui.sweep.status.slurm_queue", lambda: None)

    sweep = load_sweep(tiny_sweep(tmp_path), seeds=1)
    out = tmp_path / "slurm"
    options = SlurmOptions(partition="gpu", time="30", gpus_per_task=1, array_parallelism=2)
    with mocked_slurm():
        submitted = submit_slurm(sweep, out, options)
    assert submitted == [("12", 2), ("13", 2)]  # one array per level: trainings, then evaluations
    scripts = {path.name: path.read_text() for path in (out / "submitit").rglob("*_submission.sh")}
    level0, level1 = scripts["12_submission.sh"], scripts["13_submission.sh"]
    assert "#SBATCH --array=0-1%2" in level0 and "#SBATCH --partition=gpu" in level0 and "#SBATCH --time=30" in level0
    assert "#SBATCH --gpus-per-task=1" in level0 and "--dependency" not in level0
    assert "#SBATCH --dependency=afterany:12" in level1
    assert sweep_status(out).counts() == {"queued": 4}
    assert sorted(read_submitted(out)["ids"].values()) == ["12_0", "12_1", "13_0", "13_1"]

    # run the array tasks as Slurm would, level by level, in this process
    for array in ("12", "13"):
        for task in (0, 1):
            with slurm_task(array, task):
                process_job(out / "submitit" / "%j")
    assert SweepRunner(sweep, tmp_path / "sequential").run() == "finished"
    assert figures(out) == figures(tmp_path / "sequential")
    assert sweep_status(out).counts() == {"done": 4}


def test_a_finished_slurm_task_ignores_a_late_requeue_signal(tmp_path: Path, tiny_sweep: TinySweep) -> None:
    # Slurm signals up to 30 s before it was asked to: a job that ends in that window got SIGUSR2
    # while its Python shut down (handlers back to the default action) and died with exit 140, so
    # a real Slurm recorded the finished job as FAILED
    from submitit.core.submission import process_job
    from submitit.slurm.test_slurm import mocked_slurm

    sweep = load_sweep(tiny_sweep(tmp_path, seeds=1, runs=(("baseline", 'set = ["method=baseline"]'),), tail=""))
    out = tmp_path / "slurm"
    with mocked_slurm():
        assert submit_slurm(sweep, out, SlurmOptions(time="1")) == [("12", 1)]
    with slurm_task("12", 0):
        os.environ["SLURM_JOB_ID"] = "12"
        del os.environ["SLURM_ARRAY_JOB_ID"], os.environ["SLURM_ARRAY_TASK_ID"]
        process_job(out / "submitit" / "%j")
        after = signal.getsignal(signal.SIGUSR2), signal.getsignal(signal.SIGUSR1)
    assert (read_state(out, jobs(sweep)[0]) or {}).get("state") == "finished"
    assert after == (signal.SIG_IGN, signal.SIG_IGN)


def long_sweep(folder: Path, tiny_sweep: TinySweep) -> Path:
    return tiny_sweep(folder, file="long.toml", name="long", seeds=1, runs=(("long", 'set = ["data.train_size=160", "train.epochs=4"]'),), tail="")


def wait_until(condition: Callable[[], object], what: str, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def test_a_preempted_job_is_requeued_and_a_killed_sweep_resumes(tmp_path: Path, tiny_sweep: TinySweep, cli: Cli) -> None:
    sweep_file = long_sweep(tmp_path, tiny_sweep)
    sweep = load_sweep(sweep_file)
    job = SweepRunner(sweep, tmp_path / "x").jobs[0]
    out = tmp_path / "local"
    run_dir = out / "runs" / "long" / "seed-0"
    checkpoint = run_dir / "checkpoints" / "last.safetensors"
    command = [str(SCRIPT) if SCRIPT.exists() else sys.executable, *([] if SCRIPT.exists() else ["-m", "gat_tui"])]
    command += ["sweep", str(sweep_file), "--executor", "local", "--jobs", "1", "--out", str(out)]
    sweep_process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # 1. preemption: SIGUSR1 to the job's process: it checkpoints and submitit requeues it
        wait_until(lambda: (read_state(out, job) or {}).get("state") == "running" and checkpoint.exists(), "the job has a checkpoint")
        first = (read_state(out, job) or {})["pid"]
        os.kill(first, signal.SIGUSR1)
        # 2. as soon as the requeued job's process runs, kill the whole sweep (the submitting process,
        # submitit's controller, the job): before it can finish, whatever this machine's speed
        wait_until(lambda: (read_state(out, job) or {}).get("pid") not in (None, first), "the job is requeued")
        os.killpg(sweep_process.pid, signal.SIGKILL)
        sweep_process.wait()
    finally:
        if sweep_process.poll() is None:
            os.killpg(sweep_process.pid, signal.SIGKILL)
    logs = list((out / "submitit").rglob("*_log.out"))
    log = logs[0].read_text()
    assert len(logs) == 1 and log.index("run stopped") < log.index("Requeued job")  # checkpointed, then requeued
    assert not (run_dir / "summary.json").exists() or json.loads((run_dir / "summary.json").read_text())["status"] != "finished"
    wait_until(lambda: sweep_status(out).jobs[0].state == "stopped", "the lock is released")
    assert "is gone" in sweep_status(out).jobs[0].message

    # 3. run the sweep again: it resumes from the checkpoint and ends as an uninterrupted sweep
    again = cli("sweep", str(sweep_file), "--executor", "local", "--jobs", "1", "--out", str(out))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "sweep finished" in again.stdout
    later = [path for path in (out / "submitit").rglob("*_log.out") if path != logs[0]]
    assert len(later) == 1 and "resumed from" in later[0].read_text()
    assert SweepRunner(sweep, tmp_path / "sequential").run() == "finished"
    straight = tmp_path / "sequential" / "runs" / "long" / "seed-0"
    for name in ("best.safetensors", "last.safetensors"):
        resumed, reference = load_file(run_dir / "checkpoints" / name), load_file(straight / "checkpoints" / name)
        assert resumed.keys() == reference.keys() and all(torch.equal(resumed[key], reference[key]) for key in resumed)
    epochs = [record["epoch"] for record in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if record["event"] == "epoch"]
    assert epochs == list(range(1, 5))  # each epoch once: the killed run's unsaved steps were dropped
    assert figures(out) == figures(tmp_path / "sequential")
    status = cli("sweep", "--status", str(out))
    assert status.returncode == 0 and "1 job: 1 done" in status.stdout


def test_executor_options_are_checked(tmp_path: Path, cli: Cli, tiny_sweep: TinySweep, monkeypatch: pytest.MonkeyPatch) -> None:
    sweep_file = str(tiny_sweep(tmp_path))
    for args, fragment in [
        (["--executor", "cloud"], "--executor 'cloud': expected one of sequential, local, slurm, debug"),
        (["--jobs", "2"], "--jobs is for --executor local"),
        (["--slurm-partition", "gpu", "--executor", "local"], "--slurm-partition is for --executor slurm"),
        (["--executor", "local", "--shard", "0/2"], "--shard splits a sequential sweep"),
        (["--executor", "slurm", "--dry-run", "--slurm-time", "soon"], "--slurm-time 'soon': expected minutes"),
    ]:
        result = cli("sweep", sweep_file, *args)
        assert result.returncode == 2 and fragment in result.stderr, result.stderr
    (tmp_path / "empty").mkdir()
    missing = cli("sweep", "--status", str(tmp_path / "empty"))
    assert missing.returncode == 2 and "not a sweep folder" in missing.stderr
    # without submitit: a clear message saying what to install
    monkeypatch.setitem(sys.modules, "submitit", None)
    from gat_tui.sweep.executors import ExecutorError, require_submitit

    with pytest.raises(ExecutorError, match=r'--executor local needs submitit, which is not installed: pip install "gat-tui\[cluster\]"'):
        require_submitit("local")
