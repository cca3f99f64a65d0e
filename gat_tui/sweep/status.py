"""Where every job of a sweep stands, read from the shared sweep folder alone (`gat-tui sweep --status`).

It works for jobs on other machines because it reads only files: each job's state file
(`gat_tui.sweep.jobstate`), the run folders (a finished or failed summary, a held lock, a
checkpoint) and the evaluation files. Results on disk win over state files: a run whose summary
says finished is done, whoever ran it. A state file that says `running` or `queued` on this host
by a process that no longer exists is not believed (that process was killed): the job counts as
stopped (it has a checkpoint to resume from) or not started. On another host the file is all
there is, so a machine that died while running a job shows it as running until the sweep is run
again.

For a sweep submitted to Slurm, a job the files call queued (or requeued) is looked up in Slurm's
queue (`squeue`, asked once): a pending one says why it waits (Dependency, BeginTime, Priority),
and one that has left the queue without running (cancelled while it waited) counts as not
started (or stopped, with a checkpoint). Where `squeue` cannot be asked, the files alone decide.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gat_tui.runs.folder import RunPaths
from gat_tui.runs.status import run_status
from gat_tui.sweep.jobstate import job_key, read_state, read_submitted
from gat_tui.sweep.plan import Job, Sweep, jobs, load_sweep
from gat_tui.sweep.runner import SweepLayout, job_name

# in the order `--status` lists them
SHOWN = ("running", "queued", "stopped", "failed", "waiting", "not started", "done")


@dataclass(frozen=True)
class JobStatus:
    job: str  # as the sweep's progress lines name it
    state: str  # one of SHOWN
    where: str  # host and process, where a state file names them
    job_id: str  # submitit's job id (a Slurm array task, a local process), where submitted
    message: str


@dataclass(frozen=True)
class SweepStatus:
    name: str
    executor: str
    jobs: tuple[JobStatus, ...]

    def counts(self) -> dict[str, int]:
        counted = Counter(job.state for job in self.jobs)
        return {state: counted[state] for state in SHOWN if counted[state]}


def _alive_here(host: object, pid: object) -> bool | None:
    """Whether process `pid` lives, when `host` is this machine; None when it cannot be told from here."""
    if host != socket.gethostname() or not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def slurm_queue() -> dict[str, tuple[str, str]] | None:
    """Slurm's queue: job id (an array task as ARRAY_TASK, as submitit names it) -> (state, reason);
    None where `squeue` is missing or does not answer."""
    squeue = shutil.which("squeue")
    if squeue is None:
        return None
    try:
        answer = subprocess.run([squeue, "--noheader", "--array", "--format=%i|%T|%r"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return None
    if answer.returncode != 0:
        return None
    queue = {}
    for line in answer.stdout.splitlines():
        fields = line.strip().split("|")
        if len(fields) == 3:
            queue[fields[0]] = (fields[1], fields[2])
    return queue


def job_status(
    layout: SweepLayout, job: Job, job_id: str = "", executor: str = "", queue: Mapping[str, tuple[str, str]] | None = None
) -> JobStatus:
    record = read_state(layout.root, job) or {}
    recorded = str(record.get("state", ""))
    where = f"{record.get('host', '')}:{record.get('pid', '')}" if record else ""
    message = str(record.get("message", ""))
    checkpoint = False
    if job.evaluation is None:
        run_dir = layout.job_run_dir(job)
        on_disk = run_status(run_dir)
        if on_disk == "finished":
            return JobStatus(job_name(job), "done", where, job_id, "")
        if on_disk == "running":  # a training holds its lock now
            return JobStatus(job_name(job), "running", where, job_id, message)
        if on_disk == "failed":
            return JobStatus(job_name(job), "failed", where, job_id, message)
        checkpoint = RunPaths(run_dir).last_checkpoint.exists()
    elif layout.is_done(job):
        return JobStatus(job_name(job), "done", where, job_id, "")
    resting = "stopped" if checkpoint else "not started"
    if recorded in ("queued", "requeued") and executor == "slurm" and queue is not None and job_id:
        if job_id not in queue:  # it left Slurm's queue without running: cancelled while it waited
            note = "not in Slurm's queue any more (cancelled before it ran?); run the sweep again to go on"
            return JobStatus(job_name(job), resting, where, job_id, note)
        slurm_state, reason = queue[job_id]
        note = f"Slurm: {slurm_state.lower()}" + (f" ({reason})" if reason and reason != "None" else "")
        return JobStatus(job_name(job), "queued", where, job_id, f"{message}; {note}" if message else note)
    if recorded in ("running", "queued", "requeued"):
        # `running` names the job's own process; `queued` by a local sweep names the sweep that
        # waits to start it; Slurm's queue and a requeue outlive the process that wrote them
        checked = recorded == "running" or (recorded == "queued" and executor != "slurm")
        if checked and _alive_here(record.get("host"), record.get("pid")) is False:
            return JobStatus(job_name(job), resting, where, job_id, f"its process ({where}) is gone; run the sweep again to go on")
        return JobStatus(job_name(job), "running" if recorded == "running" else "queued", where, job_id, message)
    if recorded in ("failed", "waiting"):
        return JobStatus(job_name(job), recorded, where, job_id, message)
    return JobStatus(job_name(job), resting, where, job_id, message if recorded == "stopped" else "")


def sweep_status(root: Path) -> SweepStatus:
    """Every planned job's status; the plan is the folder's sweep.toml with the seeds last submitted."""
    submitted = read_submitted(root)
    seeds = submitted.get("seeds")
    sweep: Sweep = load_sweep(root / "sweep.toml", seeds if isinstance(seeds, int) and seeds > 0 else None)
    ids = submitted.get("ids", {}) if isinstance(submitted.get("ids"), dict) else {}
    executor = str(submitted.get("executor", ""))
    layout = SweepLayout(root)
    # the queue before the state files: a job that leaves it in between has written its new state by then
    queue = slurm_queue() if executor == "slurm" else None
    return SweepStatus(
        sweep.name, executor, tuple(job_status(layout, job, str(ids.get(job_key(job), "")), executor, queue) for job in jobs(sweep))
    )
