"""Each sweep job's state file and the submitter's record, as `--status` and the executors read them."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

import pytest

from gat_tui.sweep.jobstate import STATES, job_key, read_state, read_submitted, state_file, write_state, write_submitted
from gat_tui.sweep.plan import Evaluation, Job, RunEntry, TuningPoint

ENTRY = RunEntry("gat", "p", ())
EVALUATION = Evaluation("fgm", "fgm-l2", (0.5,), ("gat",), None, False, "test", 0)
TRAIN, EVAL, TUNE = Job("train", 3, ENTRY), Job("eval", 3, ENTRY, EVALUATION), Job("tune", 1, ENTRY, point=TuningPoint("c_g=1", ()))


def test_each_job_has_its_own_file_name() -> None:
    assert [job_key(job) for job in (TRAIN, EVAL, TUNE)] == ["train--gat--seed-3", "eval--fgm--gat--seed-3", "tune--gat--c_g=1--seed-1"]
    assert state_file(Path("/out"), EVAL) == Path("/out/jobs/eval--fgm--gat--seed-3.json")


def test_a_state_file_says_who_acted_last_and_how(tmp_path: Path) -> None:
    write_state(tmp_path, TRAIN, "gat seed 3", "running")
    record = read_state(tmp_path, TRAIN)
    assert record is not None
    updated = record.pop("updated")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", updated)
    assert record == {"job": "gat seed 3", "key": "train--gat--seed-3", "state": "running", "host": socket.gethostname(), "pid": os.getpid(), "message": ""}
    write_state(tmp_path, TRAIN, "gat seed 3", "failed", "diverged")
    assert (read_state(tmp_path, TRAIN) or {})["message"] == "diverged"
    assert (tmp_path / "jobs" / "train--gat--seed-3.json").read_text().endswith("}\n")
    assert read_state(tmp_path, EVAL) is None  # never written


def test_an_unknown_state_is_refused_naming_the_ones_allowed(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as raised:
        write_state(tmp_path, TRAIN, "x", "done")
    assert str(raised.value) == "job state 'done': expected one of queued, running, finished, skipped, failed, stopped, waiting, requeued"
    assert not state_file(tmp_path, TRAIN).exists()
    assert STATES == ("queued", "running", "finished", "skipped", "failed", "stopped", "waiting", "requeued")


@pytest.mark.parametrize("text", ["{not json", '["running"]', '{"state": "done"}', '{"job": "x"}', "\udcff"])
def test_an_unreadable_state_file_counts_as_none(tmp_path: Path, text: str) -> None:
    path = state_file(tmp_path, TRAIN)
    path.parent.mkdir(parents=True)
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert read_state(tmp_path, TRAIN) is None


def test_the_submitted_record_keeps_ids_while_the_seeds_stay(tmp_path: Path) -> None:
    assert read_submitted(tmp_path) == {}
    write_submitted(tmp_path, "slurm", 2, {"a": "1_0"})
    write_submitted(tmp_path, "slurm", 2, {"b": "1_1"})  # the next level's ids join the first's
    write_submitted(tmp_path, "slurm", 2, {"a": "2_0"})  # a resubmitted job's new id replaces its old one
    record = read_submitted(tmp_path)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", record.pop("updated"))
    assert record == {"executor": "slurm", "seeds": 2, "ids": {"a": "2_0", "b": "1_1"}}
    write_submitted(tmp_path, "local", 3, {"c": "9"})  # another seed count plans other jobs: old ids go
    assert {key: read_submitted(tmp_path)[key] for key in ("executor", "seeds", "ids")} == {"executor": "local", "seeds": 3, "ids": {"c": "9"}}
    assert (tmp_path / "jobs" / "submitted.json").read_text().endswith("}\n")
    assert (tmp_path / "jobs" / "submitted.json").read_text().startswith('{\n "executor": "local",\n "seeds": 3,\n')  # one field a line
    (tmp_path / "jobs" / "submitted.json").write_text('{"executor": "local", "seeds": 3}')  # written before ids were kept
    write_submitted(tmp_path, "local", 3, {"d": "10"})
    assert read_submitted(tmp_path)["ids"] == {"d": "10"}


@pytest.mark.parametrize("text", ["{oops", "[1, 2]"])
def test_an_unreadable_submitted_record_is_empty(tmp_path: Path, text: str) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "submitted.json").write_text(text)
    assert read_submitted(tmp_path) == {}
    write_submitted(tmp_path, "local", 1, {"a": "1"})  # and it is written afresh
    assert json.loads((tmp_path / "jobs" / "submitted.json").read_text())["ids"] == {"a": "1"}
