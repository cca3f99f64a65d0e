"""What `gat-tui sweep --status` says of each job: the state, where it runs, its job id and the message.

Each case writes the files a job leaves in the sweep folder (its state file, its run folder's
summary, checkpoint or lock, an evaluation file) and names the state `--status` must show,
following the rules in `gat_tui.sweep.status`'s docstring: results on disk win; a dead process
of this host is not believed; Slurm's queue decides for jobs the files call queued.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gat_tui.runs.folder import RunPaths
from gat_tui.runs.lock import RunLock
from gat_tui.sweep import status as status_module
from gat_tui.sweep.jobstate import job_key, state_file, write_submitted
from gat_tui.sweep.plan import Job, load_sweep
from gat_tui.sweep.runner import SweepLayout
from gat_tui.sweep.status import SHOWN, JobStatus, SweepStatus, job_status, slurm_queue, sweep_status

SWEEP = """\
name = "st"
seeds = 2
[[runs]]
preset = "p"
label = "base"
[[evaluations]]
name = "fgm"
attack = "fgm-l2"
"""
HERE = socket.gethostname()


@pytest.fixture
def layout(tmp_path: Path) -> SweepLayout:
    root = tmp_path / "out"
    root.mkdir()
    (root / "sweep.toml").write_text(SWEEP)
    return SweepLayout(root)


def planned(layout: SweepLayout) -> list[Job]:
    """train base seed 0, eval fgm of base seed 0, train base seed 1, eval fgm of base seed 1."""
    from gat_tui.sweep.plan import jobs

    return jobs(load_sweep(layout.root / "sweep.toml"))


def dead_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def record(layout: SweepLayout, job: Job, state: str, host: str = "elsewhere", pid: object = 42, message: str = "said") -> None:
    path = state_file(layout.root, job)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"job": "j", "key": job_key(job), "state": state, "host": host, "pid": pid, "message": message}))


def summary(layout: SweepLayout, job: Job, status: str) -> None:
    run_dir = layout.job_run_dir(job)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps({"status": status}))


def checkpoint(layout: SweepLayout, job: Job) -> None:
    last = RunPaths(layout.job_run_dir(job)).last_checkpoint
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_bytes(b"")


def test_no_state_file_and_no_run_is_not_started(layout: SweepLayout) -> None:
    train, evaluation = planned(layout)[:2]
    assert job_status(layout, train, "9_0") == JobStatus("base seed 0", "not started", "", "9_0", "")
    assert job_status(layout, evaluation) == JobStatus("eval fgm of base seed 0", "not started", "", "", "")
    checkpoint(layout, train)  # killed before it could write a state file: its checkpoint can be resumed
    assert job_status(layout, train) == JobStatus("base seed 0", "stopped", "", "", "")


def test_results_on_disk_win_over_the_state_file(layout: SweepLayout) -> None:
    train, evaluation = planned(layout)[:2]
    record(layout, train, "failed")
    summary(layout, train, "finished")
    assert job_status(layout, train, "7") == JobStatus("base seed 0", "done", "elsewhere:42", "7", "")
    record(layout, evaluation, "running", message="attacking")
    layout.eval_file("fgm", "base", 0).parent.mkdir(parents=True)
    layout.eval_file("fgm", "base", 0).write_text("{}")
    assert job_status(layout, evaluation, "8") == JobStatus("eval fgm of base seed 0", "done", "elsewhere:42", "8", "")


def test_a_failed_summary_is_failed_with_the_state_files_message(layout: SweepLayout) -> None:
    train = planned(layout)[0]
    record(layout, train, "running", host=HERE, pid=os.getpid(), message="diverged")
    summary(layout, train, "failed")
    assert job_status(layout, train) == JobStatus("base seed 0", "failed", f"{HERE}:{os.getpid()}", "", "diverged")


def test_a_held_lock_is_running_whatever_the_state_file_says(layout: SweepLayout) -> None:
    train = planned(layout)[0]
    record(layout, train, "failed", host=HERE, pid=dead_pid(), message="old")
    summary(layout, train, "stopped")
    pid = int(json.loads(state_file(layout.root, train).read_text())["pid"])
    with RunLock(layout.job_run_dir(train)):
        assert job_status(layout, train, "4_2") == JobStatus("base seed 0", "running", f"{HERE}:{pid}", "4_2", "old")


def test_a_dead_process_of_this_host_is_not_believed(layout: SweepLayout) -> None:
    train = planned(layout)[0]
    pid = dead_pid()
    record(layout, train, "running", host=HERE, pid=pid)
    gone = f"its process ({HERE}:{pid}) is gone; run the sweep again to go on"
    assert job_status(layout, train) == JobStatus("base seed 0", "not started", f"{HERE}:{pid}", "", gone)
    checkpoint(layout, train)
    assert job_status(layout, train).state == "stopped"
    record(layout, train, "queued", host=HERE, pid=pid)  # a local sweep that was waiting to start it
    assert job_status(layout, train, executor="local") == JobStatus("base seed 0", "stopped", f"{HERE}:{pid}", "", gone)


def test_a_live_or_faraway_process_is_believed(layout: SweepLayout) -> None:
    train = planned(layout)[0]
    record(layout, train, "running", host=HERE, pid=os.getpid(), message="epoch 3")
    assert job_status(layout, train) == JobStatus("base seed 0", "running", f"{HERE}:{os.getpid()}", "", "epoch 3")
    record(layout, train, "running", host="elsewhere", pid=1, message="epoch 4")
    assert job_status(layout, train) == JobStatus("base seed 0", "running", "elsewhere:1", "", "epoch 4")
    record(layout, train, "running", host=HERE, pid="not a number", message="epoch 5")
    assert job_status(layout, train).state == "running"


def test_queued_and_requeued_outlive_their_writer_where_a_queue_holds_them(layout: SweepLayout) -> None:
    train = planned(layout)[0]
    pid = dead_pid()
    record(layout, train, "queued", host=HERE, pid=pid, message="submitted")
    # Slurm's queue outlives the submitter; without squeue the file is believed
    assert job_status(layout, train, executor="slurm") == JobStatus("base seed 0", "queued", f"{HERE}:{pid}", "", "submitted")
    record(layout, train, "requeued", host=HERE, pid=pid, message="requeued")
    assert job_status(layout, train, executor="local") == JobStatus("base seed 0", "queued", f"{HERE}:{pid}", "", "requeued")


def test_a_state_file_with_only_a_state_names_no_place_and_no_message(layout: SweepLayout) -> None:
    train = planned(layout)[0]
    path = state_file(layout.root, train)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"state": "failed"}))
    assert job_status(layout, train) == JobStatus("base seed 0", "failed", ":", "", "")


@pytest.mark.parametrize("state", ["failed", "waiting"])
def test_failed_and_waiting_say_why(layout: SweepLayout, state: str) -> None:
    train = planned(layout)[0]
    record(layout, train, state, message="why")
    assert job_status(layout, train) == JobStatus("base seed 0", state, "elsewhere:42", "", "why")


def test_a_stopped_job_keeps_its_message_other_ends_do_not(layout: SweepLayout) -> None:
    train = planned(layout)[0]
    record(layout, train, "stopped", message="stopped at epoch 2")
    checkpoint(layout, train)
    assert job_status(layout, train) == JobStatus("base seed 0", "stopped", "elsewhere:42", "", "stopped at epoch 2")
    record(layout, train, "skipped", message="already finished")  # but its run folder was removed since
    assert job_status(layout, train) == JobStatus("base seed 0", "stopped", "elsewhere:42", "", "")


def test_slurms_queue_decides_for_jobs_the_files_call_queued(layout: SweepLayout) -> None:
    train, evaluation = planned(layout)[:2]
    queue = {"5_0": ("PENDING", "Priority"), "5_1": ("RUNNING", "None"), "5_2": ("PENDING", "")}
    record(layout, train, "queued", message="level 0")
    assert job_status(layout, train, "5_0", "slurm", queue) == JobStatus(
        "base seed 0", "queued", "elsewhere:42", "5_0", "level 0; Slurm: pending (Priority)"
    )
    assert job_status(layout, train, "5_1", "slurm", queue).message == "level 0; Slurm: running"
    assert job_status(layout, train, "5_2", "slurm", queue).message == "level 0; Slurm: pending"
    record(layout, train, "requeued", message="")
    assert job_status(layout, train, "5_0", "slurm", queue).message == "Slurm: pending (Priority)"
    gone = "not in Slurm's queue any more (cancelled before it ran?); run the sweep again to go on"
    assert job_status(layout, train, "5_9", "slurm", queue) == JobStatus("base seed 0", "not started", "elsewhere:42", "5_9", gone)
    record(layout, evaluation, "queued", message="level 1")
    assert job_status(layout, evaluation, "5_9", "slurm", queue) == JobStatus("eval fgm of base seed 0", "not started", "elsewhere:42", "5_9", gone)
    # without a job id, or for another executor, the queue is not asked
    assert job_status(layout, train, "", "slurm", queue).state == "queued"
    record(layout, train, "queued", message="level 0")
    assert job_status(layout, train, "5_9", "local", queue) == JobStatus("base seed 0", "queued", "elsewhere:42", "5_9", "level 0")
    record(layout, train, "running", message="epoch 1")  # running: its own process decides, not the queue
    assert job_status(layout, train, "5_9", "slurm", queue) == JobStatus("base seed 0", "running", "elsewhere:42", "5_9", "epoch 1")


def test_alive_here_asks_only_about_this_hosts_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    alive = status_module._alive_here
    assert alive(HERE, os.getpid()) is True
    assert alive(HERE, dead_pid()) is False
    assert alive("elsewhere", os.getpid()) is None
    assert alive(HERE, str(os.getpid())) is None
    # a job's process: asked about, never signalled. It restores the default action of SIGHUP
    # (which kills), since an ignored signal is inherited and the test runner may ignore it
    script = "import signal, sys, time; signal.signal(signal.SIGHUP, signal.SIG_DFL); print('ready', flush=True); time.sleep(30)"
    job = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert job.stdout is not None and job.stdout.readline() == "ready\n"
        assert alive(HERE, job.pid) is True
        with pytest.raises(subprocess.TimeoutExpired):  # still running a moment later
            job.wait(timeout=0.2)
    finally:
        job.kill()
        job.wait()

    def denied(pid: int, signal: int) -> None:
        raise PermissionError

    monkeypatch.setattr(os, "kill", denied)  # a process of another user
    assert alive(HERE, 12345) is True


class Answer:
    def __init__(self, stdout: str, returncode: int = 0) -> None:
        self.stdout, self.returncode = stdout, returncode


def test_slurm_queue_reads_squeue_once_by_array_task(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[str], dict[str, Any]]] = []
    answer = Answer(" 7_0|PENDING|Dependency\n7_1|RUNNING|None\nsqueue: a warning\n\n8|COMPLETING|x|y\n")

    def run(args: list[str], **kwargs: Any) -> Answer:
        calls.append((args, kwargs))
        return answer

    monkeypatch.setattr(status_module.shutil, "which", lambda name: "/opt/slurm/bin/squeue" if name == "squeue" else None)
    monkeypatch.setattr(status_module.subprocess, "run", run)
    assert slurm_queue() == {"7_0": ("PENDING", "Dependency"), "7_1": ("RUNNING", "None")}
    assert calls == [
        (["/opt/slurm/bin/squeue", "--noheader", "--array", "--format=%i|%T|%r"], {"capture_output": True, "text": True, "timeout": 15})
    ]
    answer.returncode = 1
    assert slurm_queue() is None

    def broken(args: list[str], **kwargs: Any) -> Answer:
        raise subprocess.TimeoutExpired(args, 15)

    monkeypatch.setattr(status_module.subprocess, "run", broken)
    assert slurm_queue() is None
    monkeypatch.setattr(status_module.shutil, "which", lambda name: None)
    assert slurm_queue() is None


def test_sweep_status_plans_the_seeds_last_submitted_and_reads_their_ids(layout: SweepLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[bool] = []

    def queue() -> dict[str, tuple[str, str]]:
        asked.append(True)
        return {"3_0": ("PENDING", "BeginTime")}

    monkeypatch.setattr(status_module, "slurm_queue", queue)
    jobs_of_three = [job for job in __import__("gat_tui.sweep.plan", fromlist=["jobs"]).jobs(load_sweep(layout.root / "sweep.toml", 3))]
    write_submitted(layout.root, "slurm", 3, {job_key(jobs_of_three[0]): "3_0"})
    record(layout, jobs_of_three[0], "queued", message="")
    summary(layout, jobs_of_three[2], "finished")  # base seed 1
    status = sweep_status(layout.root)
    assert (status.name, status.executor, len(status.jobs), asked) == ("st", "slurm", 6, [True])
    assert status.jobs[0] == JobStatus("base seed 0", "queued", "elsewhere:42", "3_0", "Slurm: pending (BeginTime)")
    assert [job.job_id for job in status.jobs[1:]] == [""] * 5
    assert status.counts() == {"queued": 1, "not started": 4, "done": 1}
    assert list(status.counts()) == ["queued", "not started", "done"]  # in SHOWN's order


def test_sweep_status_without_a_submitted_record_plans_the_files_seeds(layout: SweepLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status_module, "slurm_queue", lambda: pytest.fail("the queue is asked only for a Slurm sweep"))
    status = sweep_status(layout.root)
    assert (status.executor, [job.job for job in status.jobs]) == (
        "", ["base seed 0", "eval fgm of base seed 0", "base seed 1", "eval fgm of base seed 1"],
    )
    (layout.root / "jobs").mkdir()
    (layout.root / "jobs" / "submitted.json").write_text(json.dumps({"executor": "local", "seeds": 0, "ids": ["not", "a", "table"]}))
    again = sweep_status(layout.root)
    assert (again.executor, [job.job_id for job in again.jobs]) == ("local", [""] * 4)  # seeds 0 is no count: the file's 2
    write_submitted(layout.root, "local", 1, {})  # `--seeds 1`: one seed planned, not the file's 2
    assert [job.job for job in sweep_status(layout.root).jobs] == ["base seed 0", "eval fgm of base seed 0"]


def test_counts_follow_the_order_shown() -> None:
    states = ["done", "running", "waiting", "failed", "done", "queued", "not started", "stopped"]
    status = SweepStatus("s", "", tuple(JobStatus(f"j{i}", state, "", "", "") for i, state in enumerate(states)))
    assert list(status.counts().items()) == [
        ("running", 1), ("queued", 1), ("stopped", 1), ("failed", 1), ("waiting", 1), ("not started", 1), ("done", 2),
    ]
    assert SHOWN == ("running", "queued", "stopped", "failed", "waiting", "not started", "done")
