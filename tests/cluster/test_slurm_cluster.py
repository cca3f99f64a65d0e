"""`gat-tui sweep --executor slurm` on a real Slurm: a one-node cluster on this machine
(`tests/cluster/slurm_up.sh`, which `.ci/run` calls before pytest).

Each test submits with the installed script as a user does, lets slurmctld schedule the job
arrays, deliver the signals and requeue, and reads the outcome from the scheduler
(`scontrol show job`) and the sweep folder. Without a cluster that answers here they are skipped
with the reason; `GAT_TUI_REQUIRE_SLURM=1` (set by `.ci/run` once `slurm_up.sh` brought one up)
turns that skip into a failure, so CI cannot pass them silently.

The runs are tiny (8x8 synthetic images, one torch thread) and the thread count is the same in
the jobs and in the sequential reference (`OMP_NUM_THREADS=1`, which sbatch passes on), so the
figures can be compared exactly.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from conftest import SCRIPT, TinySweep
from safetensors.torch import load_file

from gat_tui.sweep.jobstate import read_state, read_submitted
from gat_tui.sweep.plan import jobs, load_sweep
from gat_tui.sweep.report import build_report
from gat_tui.sweep.status import sweep_status

# one cluster of this machine's cores: under pytest-xdist its tests run one after another in one worker
pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.xdist_group("slurm")]

# one torch thread in every job (sbatch exports the submitting environment) and in the references
THREADS = {"OMP_NUM_THREADS": "1"}
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED"}


def _why_no_cluster() -> str | None:
    """Why the tests cannot use a Slurm cluster here, or None when one answers with this machine as its node."""
    hint = "run tests/cluster/slurm_up.sh as root (it installs slurm-wlm with apt and starts a one-node cluster)"
    missing = [command for command in ("sinfo", "sbatch", "scontrol", "scancel") if shutil.which(command) is None]
    if missing:
        return f"Slurm is not installed ({', '.join(missing)} not found): {hint}"
    try:
        answer = subprocess.run(["sinfo", "-h", "-o", "%N %T"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return f"sinfo did not answer within 10 s (slurmctld down?): {hint}"
    if answer.returncode != 0:
        return f"the Slurm cluster does not answer (sinfo: {answer.stderr.strip()}): {hint}"
    here = socket.gethostname().split(".")[0]
    nodes = [line.split() for line in answer.stdout.splitlines() if line.strip()]
    if not any(node == here and state.rstrip("*~#") in ("idle", "mixed", "allocated", "completing") for node, state in nodes):
        return f"no node of the Slurm cluster is this machine ({here}) and up (sinfo: {answer.stdout.strip() or 'no nodes'}): {hint}"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    reason = _why_no_cluster()
    if reason is None:
        return
    if os.environ.get("GAT_TUI_REQUIRE_SLURM") == "1":
        pytest.fail(f"GAT_TUI_REQUIRE_SLURM=1 but {reason}")
    pytest.skip(reason)


# --- the scheduler's view ------------------------------------------------------------------------


def scheduler_jobs(*ids: str) -> list[dict[str, str]]:
    """`scontrol -o show job` of each id (an array id gives all its tasks), one field mapping per job."""
    found: list[dict[str, str]] = []
    for job_id in ids:
        shown = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=30, check=True)
        found += [dict(re.findall(r"(\w+)=(\S*)", line)) for line in shown.stdout.splitlines() if line.strip()]
    return found


def task_name(record: dict[str, str]) -> str:
    """`array_task` as submitit's job ids name it, or the job id of a job that is no array."""
    if record.get("ArrayJobId"):
        return f"{record['ArrayJobId']}_{record['ArrayTaskId']}"
    return record["JobId"]


def wait_until(condition: Callable[[], object], what: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.5)


def all_ended(*ids: str) -> bool:
    return all(record["JobState"] in ENDED for record in scheduler_jobs(*ids))


def scheduler_table(*ids: str) -> str:
    """The scheduler's record of the jobs, as a table for failure messages (and the README's figures)."""
    rows = [f"{task_name(r):>8} {r['JobName']:<24} {r['JobState']:<10} restarts={r.get('Restarts', '?')} "
            f"start={r['StartTime']} end={r['EndTime']} dependency={r.get('Dependency', '')}" for r in scheduler_jobs(*ids)]
    return "\n".join(rows)


def seconds(stamp: str) -> float:
    return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))


# --- running the command -------------------------------------------------------------------------


def gat_tui(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [str(SCRIPT)] if SCRIPT.exists() else ["python", "-m", "gat_tui"]
    return subprocess.run(command + list(args), cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, **THREADS})


def started_sequential(sweep_file: Path, out: Path) -> subprocess.Popen[str]:
    """The uninterrupted sequential sweep, started beside the Slurm jobs (the other core)."""
    command = [str(SCRIPT)] if SCRIPT.exists() else ["python", "-m", "gat_tui"]
    return subprocess.Popen(command + ["sweep", str(sweep_file), "--headless", "--out", str(out)], cwd=out.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **THREADS})


def finished_sequential(process: subprocess.Popen[str]) -> None:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output


def submit(sweep_file: Path, out: Path, *options: str) -> list[str]:
    """`gat-tui sweep --executor slurm`: the array id of each dependency level, as it prints them."""
    submitted = gat_tui("sweep", str(sweep_file), "--executor", "slurm", "--headless", "--out", str(out), *options, cwd=out.parent)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    return re.findall(r"^level \d+: job array (\d+) of", submitted.stdout, flags=re.MULTILINE)


def figures(folder: Path) -> tuple[list, list]:
    """Every figure `gat-tui report` prints: the table and the evaluation curves."""
    report = build_report(folder)
    table = [(row.label, row.test_acc_clean, row.test_acc_adv, row.test_acc_fgm_l2) for row in report.table]
    curves = sorted((point.label, point.attack, point.eps, point.accuracy) for point in report.curves)
    return table, curves


def same_weights(run: Path, reference: Path) -> None:
    for name in ("best.safetensors", "last.safetensors"):
        resumed, straight = load_file(run / "checkpoints" / name), load_file(reference / "checkpoints" / name)
        assert resumed.keys() == straight.keys()
        differing = [key for key in resumed if not torch.equal(resumed[key], straight[key])]
        assert differing == [], f"{name}: tensors differ from the uninterrupted run's: {differing[:5]}"
    epochs = [record["epoch"] for record in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if record["event"] == "epoch"]
    assert epochs == sorted(set(epochs)), f"an epoch was recorded twice: {epochs}"


def job_log(out: Path) -> str:
    """Every submitit log of the sweep (a requeued job appends to its own)."""
    return "\n".join(path.read_text() for path in sorted((out / "submitit").rglob("*_log.out")))


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """The test's folder; any of its jobs still in the queue are cancelled at the end, pass or fail."""
    yield tmp_path
    submitted = read_submitted(tmp_path / "out").get("ids", {}) if (tmp_path / "out").exists() else {}
    ids = sorted({str(job_id).split("_")[0] for job_id in submitted.values()})
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30)


# --- (a) three dependency levels -----------------------------------------------------------------


def test_three_levels_run_in_dependency_order_and_give_the_sequential_report(
    slurm_cluster: None, workdir: Path, tiny_sweep: TinySweep
) -> None:
    # tuning runs (level 0), the tuned repeat run (level 1, after them), its evaluation (level 2):
    # the shape of presets/paper/smoke_sweep.toml plus a tuning stage, in the smallest runs
    sweep_file = tiny_sweep(
        workdir, name="levels", seeds=1, runs=(("gat", 'tune = { "gat.c_g" = [0.01, 0.001] }\ntune_seeds = 1'),)
    )
    out = workdir / "out"
    arrays = submit(sweep_file, out)
    assert len(arrays) == 3, arrays
    # --status right away: what the scheduler holds back for a dependency, the folder calls queued
    queued_by_slurm = {task_name(r) for r in scheduler_jobs(*arrays[1:]) if r["JobState"] == "PENDING"}
    status = {job.job_id: (job.state, job.message) for job in sweep_status(out).jobs}
    assert queued_by_slurm == {arrays[1], arrays[2]}  # one job each: no array index
    assert status[arrays[1]] == ("queued", "submitted to Slurm (level 1); Slurm: pending (Dependency)"), status
    assert status[arrays[2]] == ("queued", "submitted to Slurm (level 2); Slurm: pending (Dependency)"), status
    shown = gat_tui("sweep", "--status", str(out), cwd=workdir)
    assert shown.returncode == 0 and "4 jobs:" in shown.stdout and "queued" in shown.stdout, shown.stdout

    reference = started_sequential(sweep_file, workdir / "sequential")
    wait_until(lambda: all_ended(*arrays), "every array has ended")
    finished_sequential(reference)

    table = scheduler_table(*arrays)
    records = scheduler_jobs(*arrays)
    assert len(records) == 4 and all(r["JobState"] == "COMPLETED" and r["ExitCode"] == "0:0" for r in records), table
    levels = [[r for r in records if r["JobName"].endswith(f"-L{index}")] for index in range(3)]
    assert [len(level) for level in levels] == [2, 1, 1], table
    for before, after in zip(levels, levels[1:]):  # afterany: a level starts once the whole previous one has ended
        assert min(seconds(r["StartTime"]) for r in after) >= max(seconds(r["EndTime"]) for r in before), table
    assert all(r["Dependency"] == "(null)" for r in records)  # met, none left pending

    sweep = load_sweep(sweep_file)
    assert all((read_state(out, job) or {}).get("state") == "finished" for job in jobs(sweep))
    assert sweep_status(out).counts() == {"done": 4}
    assert "4 jobs: 4 done" in gat_tui("sweep", "--status", str(out), cwd=workdir).stdout
    threads = {json.loads(path.read_text())["torch_threads"] for path in workdir.rglob("summary.json")}
    assert threads == {1}  # the jobs and the sequential runs computed with the same thread count
    assert figures(out) == figures(workdir / "sequential")


# --- (b) the time limit: SIGUSR2, checkpoint, requeue ---------------------------------------------


def steps_per_second(workdir: Path, tiny_sweep: TinySweep) -> float:
    """This machine's training speed now, from a short sequential run's own step times."""
    probe = tiny_sweep(workdir / "probe", name="probe", seeds=1, runs=(("probe", 'set = ["data.train_size=320", "train.epochs=1"]'),), tail="")
    result = gat_tui("sweep", str(probe), "--headless", "--out", str(workdir / "probe" / "out"), cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    steps = [record for record in map(json.loads, next((workdir / "probe" / "out").rglob("metrics.jsonl")).read_text().splitlines())
             if record["event"] == "step"]
    return (steps[-1]["step"] - steps[0]["step"]) / max(steps[-1]["time"] - steps[0]["time"], 1e-3)


def test_a_job_at_its_time_limit_is_signalled_requeued_and_ends_as_an_uninterrupted_run(
    slurm_cluster: None, workdir: Path, tiny_sweep: TinySweep
) -> None:
    # With --slurm-time 1 gat-tui asks for SIGUSR2 5 s before the limit; slurmctld checks every
    # 30 s and signals once at most 35 s are left: 25-55 s into each start. The run is sized to
    # train ~60 s on this machine now, so its first start is always signalled before it could
    # finish; a start gains 10-50 s, so up to 10 requeues are allowed (submitit's default is 3).
    (workdir / "probe").mkdir()
    steps = math.ceil(60 * steps_per_second(workdir, tiny_sweep))
    train_size = 16 * max(10, math.ceil(steps / 2))  # batches of 16, two epochs
    sweep_file = tiny_sweep(workdir, name="limit", seeds=1, tail="[slurm]\nmax_num_timeout = 10\n",
                            runs=(("long", f'set = ["data.train_size={train_size}", "train.epochs=2"]'),))
    out = workdir / "out"
    (array,) = submit(sweep_file, out, "--slurm-time", "1")
    reference = started_sequential(sweep_file, workdir / "sequential")
    wait_until(lambda: all_ended(array), "the job has ended")
    finished_sequential(reference)

    table = scheduler_table(array)
    (record,) = scheduler_jobs(array)
    assert record["JobState"] == "COMPLETED" and record["TimeLimit"] == "00:01:00", table
    assert "#SBATCH --signal=USR2@5" in next((out / "submitit").rglob("*_submission.sh")).read_text().splitlines()
    assert int(record["Restarts"]) >= 1, table  # requeued by submitit through Slurm (scontrol requeue)
    log = job_log(out)
    assert "Caught signal SIGUSR2" in log and "this job is timed-out" in log, log[-3000:]
    # the stop is saved as "checkpoint stopped"; when the signal lands at an epoch's end, that epoch's
    # own checkpoint is already the latest state and is not saved twice: either way the line before
    # the stop is a checkpoint (seen in CI: the signal came as epoch 1 ended)
    stopped = log.index("run stopped after")
    last_line_before_stop = log[:stopped].rstrip().splitlines()[-1]
    assert last_line_before_stop.startswith(("checkpoint stopped: ", "checkpoint epoch: ")), log[-3000:]
    assert stopped < log.index("Requeued job") < log.index("resumed from"), log[-3000:]
    same_weights(out / "runs" / "long" / "seed-0", workdir / "sequential" / "runs" / "long" / "seed-0")
    assert sweep_status(out).counts() == {"done": 1}


# --- (c) scancel: checkpoint and stop, no requeue; the sweep again resumes ------------------------


def test_scancel_checkpoints_without_requeue_and_the_sweep_run_again_resumes(
    slurm_cluster: None, workdir: Path, tiny_sweep: TinySweep
) -> None:
    sweep_file = tiny_sweep(workdir, name="cancel", seeds=1, tail="", runs=(("long", 'set = ["data.train_size=320", "train.epochs=3"]'),))
    sweep = load_sweep(sweep_file)
    (job,) = jobs(sweep)
    out = workdir / "out"
    run_dir = out / "runs" / "long" / "seed-0"
    (array,) = submit(sweep_file, out)
    reference = started_sequential(sweep_file, workdir / "sequential")
    # cancel it once it trains and has written a checkpoint, before it finishes
    wait_until(lambda: (read_state(out, job) or {}).get("state") == "running" and (run_dir / "checkpoints" / "last.safetensors").exists(),
               "the job trains and has a checkpoint")
    assert {job.state for job in sweep_status(out).jobs} == {"running"}
    subprocess.run(["scancel", array], check=True, timeout=30)
    wait_until(lambda: all_ended(array), "the cancelled job has ended")
    time.sleep(2)  # a requeue would show now: the job back in PENDING
    table = scheduler_table(array)
    (record,) = scheduler_jobs(array)
    assert record["JobState"] == "CANCELLED" and record["Restarts"] == "0", table
    assert "checkpoint stopped" in job_log(out) and "Requeued job" not in job_log(out)
    assert (read_state(out, job) or {}).get("state") == "stopped"
    assert sweep_status(out).counts() == {"stopped": 1}
    assert "1 job: 1 stopped" in gat_tui("sweep", "--status", str(out), cwd=workdir).stdout

    (again,) = submit(sweep_file, out)  # the same command again: the stopped run is resubmitted and resumes
    assert again != array
    wait_until(lambda: all_ended(again), "the resubmitted job has ended")
    finished_sequential(reference)
    (record,) = scheduler_jobs(again)
    assert record["JobState"] == "COMPLETED", scheduler_table(again)
    assert "resumed from" in job_log(out)
    same_weights(run_dir, workdir / "sequential" / "runs" / "long" / "seed-0")
    assert sweep_status(out).counts() == {"done": 1}


# --- (d) a job cancelled while it waited ----------------------------------------------------------


def test_status_tells_a_job_cancelled_while_pending_from_a_queued_one(
    slurm_cluster: None, workdir: Path, tiny_sweep: TinySweep
) -> None:
    # a training, then its evaluation (level 1, held by Slurm on its dependency): cancel the
    # evaluation while it waits, and its state file still says queued; the status asks squeue
    sweep_file = tiny_sweep(workdir, name="pending", seeds=1, runs=(("baseline", 'set = ["method=baseline"]'),))
    out = workdir / "out"
    first, second = submit(sweep_file, out)
    (evaluation,) = [job for job in jobs(load_sweep(sweep_file)) if job.kind == "eval"]
    before = {job.job_id: (job.state, job.message) for job in sweep_status(out).jobs}
    assert before[second] == ("queued", "submitted to Slurm (level 1); Slurm: pending (Dependency)"), before
    subprocess.run(["scancel", second], check=True, timeout=30)
    wait_until(lambda: all_ended(second), "the evaluation has left the queue")
    assert (read_state(out, evaluation) or {}).get("state") == "queued"  # no process of it ever ran
    after = {job.job_id: (job.state, job.message) for job in sweep_status(out).jobs}
    assert after[second] == ("not started", "not in Slurm's queue any more (cancelled before it ran?); run the sweep again to go on")
    shown = gat_tui("sweep", "--status", str(out), cwd=workdir).stdout
    assert "1 not started" in shown.splitlines()[0] and "not in Slurm's queue" in shown, shown
    subprocess.run(["scancel", first], check=True, timeout=30)
