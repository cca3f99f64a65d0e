"""Each sweep job's own state file in the shared sweep folder, so any machine can tell where a sweep stands.

    OUT/jobs/<key>.json        {"job", "key", "state", "host", "pid", "updated", "message", ...}
    OUT/jobs/submitted.json    the submitter's record: executor, seeds, and each key's submitit job id

A job's file is written (atomically, so a reader never sees half of it) by whoever acts on it
last: the submitter marks it `queued` before handing it to submitit, the process that runs it
marks it `running` (with its host and process id) and then with how it ended (`finished`,
`skipped`, `failed`, `stopped`, `waiting`), and a job stopped to be requeued by submitit is
marked `requeued`. The submitit job ids live in a separate file written only by the submitter,
so a job that starts before its submitter has recorded the id cannot have its `running` state
overwritten. `gat_tui.sweep.status` reads these files together with the run folders.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gat_tui.atomic import write_text_atomically
from gat_tui.sweep.plan import Job

JOBS_FOLDER = "jobs"
SUBMITTED = "submitted.json"
STATES = ("queued", "running", "finished", "skipped", "failed", "stopped", "waiting", "requeued")


def job_key(job: Job) -> str:
    """A name unique within the sweep and safe as a file name (labels and point names are folder names)."""
    if job.point is not None:
        return f"tune--{job.entry.label}--{job.point.name}--seed-{job.seed}"
    if job.evaluation is not None:
        return f"eval--{job.evaluation.name}--{job.entry.label}--seed-{job.seed}"
    return f"train--{job.entry.label}--seed-{job.seed}"


def state_file(root: Path, job: Job) -> Path:
    return root / JOBS_FOLDER / f"{job_key(job)}.json"


def write_state(root: Path, job: Job, name: str, state: str, message: str = "") -> None:
    """Record `state` for `job`, with this process's host and id (who acted on it last)."""
    if state not in STATES:
        raise ValueError(f"job state {state!r}: expected one of {', '.join(STATES)}")
    record = {
        "job": name,
        "key": job_key(job),
        "state": state,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "updated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "message": message,
    }
    write_text_atomically(state_file(root, job), json.dumps(record) + "\n")


def read_state(root: Path, job: Job) -> dict[str, Any] | None:
    """The job's last recorded state, or None when it has none (never submitted or run) or it is unreadable."""
    try:
        record = json.loads(state_file(root, job).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("state") not in STATES:
        return None
    return record


def write_submitted(root: Path, executor: str, seeds: int, ids: Mapping[str, str]) -> None:
    """The submitter's record: which executor, how many seeds (so `--status` plans the same jobs) and the job ids."""
    path = root / JOBS_FOLDER / SUBMITTED
    previous = read_submitted(root)
    known = dict(previous.get("ids", {})) if previous.get("seeds") == seeds else {}
    known.update(ids)
    record = {"executor": executor, "seeds": seeds, "updated": time.strftime("%Y-%m-%d %H:%M:%S"), "ids": known}
    write_text_atomically(path, json.dumps(record, indent=1) + "\n")


def read_submitted(root: Path) -> dict[str, Any]:
    try:
        record = json.loads((root / JOBS_FOLDER / SUBMITTED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}
