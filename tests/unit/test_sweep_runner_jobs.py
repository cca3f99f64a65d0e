"""What the sweep runner does with each job, without training: the trainer, the preset loader and
the evaluation are stand-ins that record what they are handed.

Checked: where each job's files go, which jobs are skipped, resumed, refused or left waiting
(and the message a user reads for each), the overrides a training gets (seed, tuned setting,
attack target), what an evaluation attacks, the state files written, and the shard's result.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gat_tui.config import ConfigError
from gat_tui.runs.folder import RunPaths
from gat_tui.runs.lock import RunLock
from gat_tui.sweep.jobstate import read_state, read_submitted
from gat_tui.sweep.plan import Job, Sweep, load_sweep
from gat_tui.sweep.runner import SweepLayout, SweepProgress, SweepRunner, check_sweep_out, job_name

SWEEP = """\
name = "r"
seeds = 2
[[runs]]
preset = "base_preset"
label = "base"
set = ["train.epochs=1"]
[[runs]]
preset = "atk_preset"
label = "atk"
attack_target = "base"
[[runs]]
preset = "gat_preset"
label = "gat"
tune = { "gat.c_g" = [1, 2] }
tune_seeds = 1
tune_metric = "val_acc_pgd"
[[evaluations]]
name = "direct"
attack = "fgm-l2"
eps = [0.5]
runs = ["base"]
[[evaluations]]
name = "indirect"
attack = "fgm-l2"
runs = ["atk", "base"]
source = "base"
split = "val"
limit = 3
"""


@dataclass
class Finished:
    status: str
    message: str


class Recorder:
    """The stand-in preset loader and trainer: what each training was handed."""

    def __init__(self) -> None:
        self.presets: list[tuple[str, list[str]]] = []
        self.requests: list[Any] = []
        self.result = Finished("finished", "done")
        self.stops: list[threading.Event] = []


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    import gat_tui.presets
    import gat_tui.training.trainer

    seen = Recorder()

    def load(name: str, overrides: list[str]) -> tuple[None, str]:
        seen.presets.append((name, list(overrides)))
        return None, f"config of {name}"

    class Trainer:
        def __init__(self, request: Any, subscribers: Any, control: Any) -> None:
            seen.requests.append((request, list(subscribers)))
            seen.stops.append(control.stop)

        def run(self) -> Finished:
            return seen.result

    monkeypatch.setattr(gat_tui.presets, "load_named_preset", load)
    monkeypatch.setattr(gat_tui.training.trainer, "Trainer", Trainer)
    return seen


@pytest.fixture
def sweep(tmp_path: Path) -> Sweep:
    path = tmp_path / "r.toml"
    path.write_text(SWEEP)
    return load_sweep(path)


def by_name(runner: SweepRunner) -> dict[str, Job]:
    return {job_name(job): job for job in runner.jobs}


def finish(run_dir: Path, **fields: object) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps({"status": "finished", **fields}))


def test_where_each_jobs_files_go_and_how_jobs_are_named(tmp_path: Path, sweep: Sweep) -> None:
    layout = SweepLayout(tmp_path)
    names = [job_name(job) for job in SweepRunner(sweep, tmp_path).jobs]
    assert names == [
        "tune gat c_g=1 tuning seed 0", "tune gat c_g=2 tuning seed 0",
        "base seed 0", "atk seed 0", "gat seed 0", "eval direct of base seed 0", "eval indirect of atk seed 0", "eval indirect of base seed 0",
        "base seed 1", "atk seed 1", "gat seed 1", "eval direct of base seed 1", "eval indirect of atk seed 1", "eval indirect of base seed 1",
    ]
    jobs = by_name(SweepRunner(sweep, tmp_path))
    assert layout.run_dir("base", 1) == tmp_path / "runs" / "base" / "seed-1"
    assert layout.eval_file("direct", "base", 1) == tmp_path / "evals" / "direct" / "base" / "seed-1.json"
    assert layout.job_run_dir(jobs["tune gat c_g=2 tuning seed 0"]) == tmp_path / "tuning" / "runs" / "gat" / "c_g=2" / "seed-0"
    assert layout.job_run_dir(jobs["gat seed 1"]) == tmp_path / "runs" / "gat" / "seed-1"
    assert layout.job_run_dir(jobs["eval indirect of atk seed 1"]) == tmp_path / "runs" / "atk" / "seed-1"  # the run it attacks


def test_a_job_is_done_when_its_result_is_on_disk(tmp_path: Path, sweep: Sweep) -> None:
    layout, jobs = SweepLayout(tmp_path), by_name(SweepRunner(sweep, tmp_path))
    evaluation, tuning, train = jobs["eval direct of base seed 0"], jobs["tune gat c_g=1 tuning seed 0"], jobs["base seed 0"]
    assert not any(layout.is_done(job) for job in (evaluation, tuning, train))
    finish(tmp_path / "runs" / "base" / "seed-0")  # the run an evaluation attacks is not the evaluation
    finish(tmp_path / "tuning" / "runs" / "gat" / "c_g=1" / "seed-0")
    assert [layout.is_done(job) for job in (evaluation, tuning, train)] == [False, True, True]
    layout.eval_file("direct", "base", 0).parent.mkdir(parents=True)
    layout.eval_file("direct", "base", 0).write_text("{}")
    assert layout.is_done(evaluation)


def test_a_training_gets_the_entrys_overrides_and_its_seed(tmp_path: Path, sweep: Sweep, recorder: Recorder) -> None:
    runner = SweepRunner(sweep, tmp_path / "out", data_dir=tmp_path / "data", subscribers_for=lambda job: ["sub of " + job_name(job)])
    assert runner.run_job(by_name(runner)["base seed 1"]) == ("finished", "done")
    assert recorder.presets == [("base_preset", ["train.epochs=1", "seed=1"])]
    (request, subscribers), = recorder.requests
    assert (request.config, request.run_dir, request.data_dir, request.resume_from) == (
        "config of base_preset", tmp_path / "out" / "runs" / "base" / "seed-1", tmp_path / "data", None,
    )
    assert subscribers == ["sub of base seed 1"]
    assert recorder.stops == [runner.stop]  # the sweep's stop reaches the training
    state = read_state(tmp_path / "out", by_name(runner)["base seed 1"]) or {}
    assert (state["job"], state["state"], state["message"]) == ("base seed 1", "finished", "done")


def test_a_tuning_run_trains_its_point_and_selects_by_the_tuning_figure(tmp_path: Path, sweep: Sweep, recorder: Recorder) -> None:
    runner = SweepRunner(sweep, tmp_path / "out")
    runner.run_job(by_name(runner)["tune gat c_g=2 tuning seed 0"])
    assert recorder.presets == [("gat_preset", ["gat.c_g=2", "train.select_best_by=val_acc_pgd", "seed=1000000"])]
    assert recorder.requests[0][0].run_dir == tmp_path / "out" / "tuning" / "runs" / "gat" / "c_g=2" / "seed-0"


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path, sweep: Sweep, recorder: Recorder) -> None:
    runner = SweepRunner(sweep, tmp_path / "out")
    last = RunPaths(tmp_path / "out" / "runs" / "base" / "seed-0").last_checkpoint
    last.parent.mkdir(parents=True)
    last.write_bytes(b"")
    recorder.result = Finished("stopped", "stopped at step 3")
    assert runner.run_job(by_name(runner)["base seed 0"]) == ("stopped", "stopped at step 3")
    assert recorder.requests[0][0].resume_from == last


def test_a_finished_run_is_skipped_and_a_run_trained_elsewhere_refused(tmp_path: Path, sweep: Sweep, recorder: Recorder) -> None:
    runner = SweepRunner(sweep, tmp_path / "out")
    job = by_name(runner)["base seed 0"]
    run_dir = tmp_path / "out" / "runs" / "base" / "seed-0"
    finish(run_dir)
    assert runner.run_job(job) == ("skipped", "already finished")
    assert (read_state(tmp_path / "out", job) or {})["state"] == "skipped"
    (run_dir / "summary.json").unlink()
    with RunLock(run_dir):
        state, message = runner.run_job(job)
    assert state == "failed" and message == f"{run_dir} is being trained by this process, since " + message.split("since ")[1]
    assert message.endswith(" (a second shard?)")
    assert (read_state(tmp_path / "out", job) or {})["state"] == "skipped"  # the lock's holder owns the state file
    tuning = by_name(runner)["tune gat c_g=1 tuning seed 0"]  # a tuning run's too
    with RunLock(tmp_path / "out" / "tuning" / "runs" / "gat" / "c_g=1" / "seed-0"):
        assert runner.run_job(tuning)[0] == "failed"
    assert read_state(tmp_path / "out", tuning) is None
    assert recorder.presets == []


def test_an_attacker_waits_for_its_target_then_attacks_its_best_checkpoint(tmp_path: Path, sweep: Sweep, recorder: Recorder) -> None:
    runner = SweepRunner(sweep, tmp_path / "out")
    job = by_name(runner)["atk seed 1"]
    assert runner.run_job(job) == ("failed", "its attack target base seed 1 has not finished")
    assert recorder.requests == []
    finish(tmp_path / "out" / "runs" / "base" / "seed-1")
    assert runner.run_job(job) == ("finished", "done")
    best = tmp_path / "out" / "runs" / "base" / "seed-1" / "checkpoints" / "best.safetensors"
    assert recorder.presets[-1] == ("atk_preset", ["seed=1", f'attack.classifier="{best}"'])


def test_a_tuned_entrys_repeat_waits_for_its_choice_then_trains_it(tmp_path: Path, sweep: Sweep, recorder: Recorder) -> None:
    out = tmp_path / "out"
    runner = SweepRunner(sweep, out)
    job = by_name(runner)["gat seed 1"]
    state, message = runner.run_job(job)
    assert (state, message) == ("waiting", "no tuned setting yet: 2 of 2 tuning runs of gat have not finished; run this sweep (shard) again once they have")
    assert (read_state(out, job) or {})["state"] == "waiting" and not (out / "tuning" / "gat.json").exists()
    finish(out / "tuning" / "runs" / "gat" / "c_g=1" / "seed-0", best_value=0.25)
    finish(out / "tuning" / "runs" / "gat" / "c_g=2" / "seed-0", best_value=0.75)
    assert runner.run_job(job) == ("finished", "done")
    assert recorder.presets == [("gat_preset", ["gat.c_g=2", "seed=1"])]  # the chosen point, the repeat's own selection
    assert json.loads((out / "tuning" / "gat.json").read_text())["chosen"] == "c_g=2"


def test_a_job_that_raises_fails_alone_with_the_error_named(tmp_path: Path, sweep: Sweep, recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = SweepRunner(sweep, tmp_path / "out")
    job = by_name(runner)["base seed 0"]
    states: list[str] = []

    def broken(job: Job) -> tuple[str, str]:
        mid = read_state(tmp_path / "out", job) or {}
        states.append(f"{mid['job']}: {mid['state']}")  # marked running before it starts
        raise KeyError("lr")

    monkeypatch.setattr(runner, "_train", broken)
    assert runner.run_job(job) == ("failed", "KeyError: 'lr'")
    assert states == ["base seed 0: running"]
    state = read_state(tmp_path / "out", job) or {}
    assert (state["state"], state["message"], state["pid"]) == ("failed", "KeyError: 'lr'", os.getpid())


def test_an_evaluation_attacks_the_best_checkpoint_of_its_run_and_source(tmp_path: Path, sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    import gat_tui.sweep.evaluate

    calls: list[tuple[Any, ...]] = []

    def evaluate_run(*args: Any) -> None:
        calls.append(args)
        args[-1].parent.mkdir(parents=True, exist_ok=True)
        args[-1].write_text("{}")

    monkeypatch.setattr(gat_tui.sweep.evaluate, "evaluate_run", evaluate_run)
    out = tmp_path / "out"
    runner = SweepRunner(sweep, out, data_dir=tmp_path / "data")
    jobs = by_name(runner)
    assert runner.run_job(jobs["eval indirect of atk seed 1"]) == ("failed", "atk seed 1 has not finished training")
    finish(out / "runs" / "atk" / "seed-1")
    finish(out / "runs" / "base" / "seed-1")
    target = out / "evals" / "indirect" / "atk" / "seed-1.json"
    assert runner.run_job(jobs["eval indirect of atk seed 1"]) == ("finished", str(target))
    assert runner.run_job(jobs["eval indirect of base seed 1"])[0] == "finished"
    assert runner.run_job(jobs["eval direct of base seed 1"])[0] == "finished"
    best = RunPaths(out / "runs" / "base" / "seed-1").best_checkpoint
    assert [(call[0], call[1], call[2].name, call[3], call[4]) for call in calls] == [
        (RunPaths(out / "runs" / "atk" / "seed-1").best_checkpoint, best, "indirect", tmp_path / "data", target),
        (best, None, "indirect", tmp_path / "data", out / "evals" / "indirect" / "base" / "seed-1.json"),  # its own source: direct
        (best, None, "direct", tmp_path / "data", out / "evals" / "direct" / "base" / "seed-1.json"),
    ]
    assert runner.run_job(jobs["eval direct of base seed 1"]) == ("skipped", "already evaluated")
    assert len(calls) == 3


def test_the_shard_reports_each_job_and_ends_with_the_worst_state(tmp_path: Path, sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    progress: list[SweepProgress] = []
    runner = SweepRunner(sweep, tmp_path / "out", shard=1, shards=2, on_progress=progress.append)
    assert [job.seed for job in runner.jobs if job.kind != "tune"] == [1] * 6 and len(runner.jobs) == 6  # tuning seed 0 is shard 0's
    outcomes = iter([("finished", "a"), ("waiting", "b"), ("skipped", "c"), ("failed", "d"), ("finished", "e"), ("finished", "f")])
    monkeypatch.setattr(runner, "run_job", lambda job: next(outcomes))
    assert runner.run() == "failed"
    assert progress[:4] == [
        SweepProgress("base seed 1", "running", 0, 6), SweepProgress("base seed 1", "finished", 1, 6, "a"),
        SweepProgress("atk seed 1", "running", 1, 6), SweepProgress("atk seed 1", "waiting", 2, 6, "b"),
    ]
    assert progress[-1] == SweepProgress("eval indirect of base seed 1", "finished", 6, 6, "f") and len(progress) == 12
    for results, expected in (([("waiting", "")] + [("finished", "")] * 5, "waiting"), ([("skipped", "")] * 6, "finished")):
        scripted = iter(results)
        monkeypatch.setattr(runner, "run_job", lambda job, scripted=scripted: next(scripted))
        assert runner.run() == expected


def test_a_stop_ends_the_shard_before_its_next_job(tmp_path: Path, sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = SweepRunner(sweep, tmp_path / "out")
    ran: list[str] = []

    def run_job(job: Job) -> tuple[str, str]:
        ran.append(job_name(job))
        return ("stopped", "") if len(ran) == 2 else ("finished", "")

    monkeypatch.setattr(runner, "run_job", run_job)
    assert runner.run() == "stopped" and len(ran) == 2  # a job that stopped stops the shard
    ran.clear()
    runner.stop.set()
    assert runner.run() == "stopped" and ran == []


def test_prepare_copies_the_sweep_file_once_and_records_the_seeds(tmp_path: Path, sweep: Sweep) -> None:
    out = tmp_path / "out"
    SweepRunner(sweep, out).prepare("local")
    assert (out / "sweep.toml").read_text() == SWEEP
    submitted = read_submitted(out)
    assert (submitted["executor"], submitted["seeds"], submitted["ids"]) == ("local", 2, {})
    (out / "sweep.toml").write_text("# kept as it is\n" + SWEEP)  # the same sweep written another way
    SweepRunner(sweep, out).prepare()
    assert (out / "sweep.toml").read_text().startswith("# kept as it is\n") and read_submitted(out)["executor"] == "sequential"
    nested = tmp_path / "runs" / "sweeps" / "r"  # the default <runs dir>/sweeps/<name>, made with its parents
    SweepRunner(sweep, nested).prepare()
    assert (nested / "sweep.toml").read_text() == SWEEP
    built = Sweep("built", "", 1, sweep.runs, ())  # a sweep without a file: nothing to copy
    SweepRunner(built, tmp_path / "built").prepare()
    assert not (tmp_path / "built" / "sweep.toml").exists() and read_submitted(tmp_path / "built")["seeds"] == 1


def test_an_output_folder_holding_another_sweep_or_a_file_is_refused(tmp_path: Path, sweep: Sweep) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.toml").write_text(SWEEP.replace("seeds = 2", "seeds = 3"))
    with pytest.raises(ConfigError) as raised:
        SweepRunner(sweep, out).prepare()
    assert str(raised.value) == (
        f"--out {out}: holds the sweep of {out / 'sweep.toml'}, which differs from {sweep.path}; "
        "run that sweep file again to resume it, or choose another --out folder for this one"
    )
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError) as raised:
        check_sweep_out(tmp_path / "file", sweep)
    assert str(raised.value) == f"--out {tmp_path / 'file'}: is a file; expected a folder for the sweep"
    check_sweep_out(tmp_path / "new", sweep)  # a folder still to make is fine


def test_sweep_files_that_do_not_parse_count_as_the_same_only_byte_for_byte(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_bytes(b"[[runs]\n\xff")
    sweep = Sweep("b", "", 1, (), (), path=broken)
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.toml").write_bytes(b"[[runs]\n\xff")
    check_sweep_out(out, sweep)
    (out / "sweep.toml").write_bytes(b"[[runs]\n\xfe")
    with pytest.raises(ConfigError, match="which differs from"):
        check_sweep_out(out, sweep)


def test_a_copy_saved_with_a_byte_order_mark_is_the_same_sweep(tmp_path: Path, sweep: Sweep) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.toml").write_bytes(b"\xef\xbb\xbf" + SWEEP.encode())  # as some Windows editors save it
    check_sweep_out(out, sweep)


def test_a_name_the_file_system_refuses_is_a_config_error(tmp_path: Path, sweep: Sweep) -> None:
    too_long = tmp_path / ("x" * 300)
    with pytest.raises(ConfigError) as raised:
        check_sweep_out(too_long, sweep)
    assert str(raised.value) == f"--out: cannot use {too_long}: File name too long"
