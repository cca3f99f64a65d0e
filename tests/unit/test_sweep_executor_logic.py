"""The executors' own logic with submitit replaced by stand-ins: what is submitted in which order,
with which parameters, which state each job's file says, and what the sweep's result is.

What only a real cluster can check (sbatch accepting the script, the dependency holding a level
back, the requeue signal arriving in time, a preempted job resuming) is in tests/cluster.
"""

from __future__ import annotations

import pickle
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from gat_tui.events import CheckpointSaved, EpochSummary, LogMessage, RunFinished, StepMetrics
from gat_tui.sweep import executors
from gat_tui.sweep.executors import (
    LOCAL_TIMEOUT_MIN,
    ExecutorError,
    LocalSweep,
    SlurmOptions,
    SweepJob,
    cpu_threads_per_job,
    default_jobs,
    signal_delay_for,
    slurm_parameters,
    submit_slurm,
    visible_gpus,
)
from gat_tui.sweep.jobstate import read_state, read_submitted, state_file, write_state
from gat_tui.sweep.plan import Job, Sweep, load_sweep
from gat_tui.sweep.runner import SweepProgress, job_name

SWEEP = """\
name = "ex"
seeds = 2
[[runs]]
preset = "p"
label = "base"
[[runs]]
preset = "p"
label = "atk"
attack_target = "base"
"""


@pytest.fixture
def sweep(tmp_path: Path) -> Sweep:
    path = tmp_path / "ex.toml"
    path.write_text(SWEEP)
    return load_sweep(path)


class Handle:
    def __init__(self, job_id: str, result: Any = ("finished", "ok"), polls: int = 0) -> None:
        self.job_id, self._result, self.polls = job_id, result, polls

    def done(self) -> bool:
        self.polls -= 1
        return self.polls < 0

    def result(self) -> Any:
        if isinstance(self._result, Exception):
            raise self._result
        return self._result


class SlurmStandIn:
    """A submitit SlurmExecutor that records each array instead of calling sbatch."""

    arrays: list[tuple[dict[str, Any], list[SweepJob], int | None]] = []

    def __init__(self, folder: Path, refuse_level: int | None = None) -> None:
        self.folder, self.parameters, self.max_num_timeout, self.refuse_level = folder, dict[str, Any](), None, refuse_level

    def update_parameters(self, **parameters: Any) -> None:
        self.parameters.update(parameters)

    def submit_array(self, jobs: list[SweepJob]) -> list[Handle]:
        index = len(self.arrays)
        if index == self.refuse_level:
            raise RuntimeError("sbatch: error: invalid partition")
        self.arrays.append((dict(self.parameters), jobs, self.max_num_timeout))
        return [Handle(f"{100 + index}_{task}") for task in range(len(jobs))]


def test_slurm_submits_one_array_per_level_each_after_the_previous(tmp_path: Path, sweep: Sweep) -> None:
    SlurmStandIn.arrays = []
    sweep.slurm.update({"max_num_timeout": 5, "mem": "4G"})
    out = tmp_path / "out"
    folders: list[Path] = []

    def factory(folder: Path) -> SlurmStandIn:
        folders.append(folder)
        return SlurmStandIn(folder)

    levels = submit_slurm(sweep, out, SlurmOptions(partition="gpu"), data_dir=tmp_path / "data", executor_factory=factory)
    assert folders == [out / "submitit" / "%j"] * 2  # submitit's logs and pickles, a folder per job id
    assert levels == [("100", 2), ("101", 2)]  # the baselines, then the attackers
    (first, first_jobs, first_timeouts), (second, second_jobs, second_timeouts) = SlurmStandIn.arrays
    assert first == {"job_name": "gat-tui-ex-L0", "mem": "4G", "partition": "gpu"}
    assert second == {"job_name": "gat-tui-ex-L1", "mem": "4G", "partition": "gpu", "dependency": "afterany:100"}
    assert (first_timeouts, second_timeouts) == (5, 5)  # to the executor, not to sbatch
    assert [job_name(job.job) for job in first_jobs + second_jobs] == ["base seed 0", "base seed 1", "atk seed 0", "atk seed 1"]
    assert [(job.sweep is sweep, job.out, job.data_dir) for job in first_jobs + second_jobs] == [(True, out, tmp_path / "data")] * 4
    ids = read_submitted(out)
    assert (ids["executor"], ids["seeds"]) == ("slurm", 2)
    assert ids["ids"] == {"train--base--seed-0": "100_0", "train--base--seed-1": "100_1", "train--atk--seed-0": "101_0", "train--atk--seed-1": "101_1"}
    state = read_state(out, second_jobs[1].job) or {}
    assert (state["state"], state["message"], state["job"]) == ("queued", "submitted to Slurm (level 1)", "atk seed 1")


def test_slurm_skips_what_is_done_and_names_the_level_sbatch_refused(tmp_path: Path, sweep: Sweep) -> None:
    out = tmp_path / "out"
    for seed in (0, 1):  # both baselines finished: the attackers are the only level left
        run_dir = out / "runs" / "base" / f"seed-{seed}"
        run_dir.mkdir(parents=True)
        (run_dir / "summary.json").write_text('{"status": "finished"}')
    SlurmStandIn.arrays = []
    assert submit_slurm(sweep, out, SlurmOptions(), executor_factory=SlurmStandIn) == [("100", 2)]
    assert "dependency" not in SlurmStandIn.arrays[0][0] and SlurmStandIn.arrays[0][2] is None
    SlurmStandIn.arrays = []
    fresh = tmp_path / "fresh"
    with pytest.raises(ExecutorError) as raised:
        submit_slurm(sweep, fresh, SlurmOptions(), executor_factory=lambda folder: SlurmStandIn(folder, refuse_level=1))
    assert str(raised.value) == (
        "submitting level 1 (2 jobs) failed: RuntimeError: sbatch: error: invalid partition; levels before it were submitted: 100"
    )
    atk = Job("train", 0, sweep.runs[1])
    assert not state_file(fresh, atk).exists()  # never handed to Slurm: not queued
    assert (read_state(fresh, Job("train", 0, sweep.runs[0])) or {})["state"] == "queued"
    three = tmp_path / "three.toml"  # one seed: one job a level; the third level refused
    three.write_text(SWEEP.replace("seeds = 2", "seeds = 1") + '[[evaluations]]\nattack = "fgm-l2"\nruns = ["atk"]\n')
    SlurmStandIn.arrays = []
    with pytest.raises(ExecutorError) as raised:
        submit_slurm(load_sweep(three), tmp_path / "3", SlurmOptions(), executor_factory=lambda folder: SlurmStandIn(folder, refuse_level=2))
    assert str(raised.value).endswith("; levels before it were submitted: 100, 101")
    assert SlurmStandIn.arrays[1][0]["dependency"] == "afterany:100"
    SlurmStandIn.arrays = []
    with pytest.raises(ExecutorError, match=r"^submitting level 0 \(2 jobs\) failed: RuntimeError: sbatch: error: invalid partition$"):
        submit_slurm(sweep, tmp_path / "third", SlurmOptions(), executor_factory=lambda folder: SlurmStandIn(folder, refuse_level=0))


def test_levels_follow_attack_targets_tuning_and_an_indirect_source_listed_later(tmp_path: Path) -> None:
    path = tmp_path / "levels.toml"
    path.write_text(
        'seeds = 1\n[[runs]]\npreset = "p"\nlabel = "base"\n'
        '[[runs]]\npreset = "p"\nlabel = "tuned"\ntune = { "gat.c_g" = [1] }\ntune_seeds = 1\n'
        '[[runs]]\npreset = "p"\nlabel = "atk"\nattack_target = "base"\n'
        '[[evaluations]]\nname = "of_tuned"\nattack = "fgm-l2"\nruns = ["tuned"]\n'
        '[[evaluations]]\nname = "from_atk"\nattack = "fgm-l2"\nruns = ["base"]\nsource = "atk"\n'
    )
    sweep = load_sweep(path)
    levels = [[job_name(job) for job in level] for level in executors.dependency_levels(sweep)]
    # the attacker (after base) and the tuned repeat (after its tuning run) are one level; an
    # evaluation follows every run it reads, its source too, even when that is an attacker
    assert levels == [
        ["tune tuned c_g=1 tuning seed 0", "base seed 0"],
        ["tuned seed 0", "atk seed 0"],
        ["eval of_tuned of tuned seed 0", "eval from_atk of base seed 0"],
    ]
    some = [job for job in executors.jobs(sweep) if job.kind == "train"]
    assert [[job_name(job) for job in level] for level in executors.dependency_levels(sweep, some)] == [
        ["base seed 0"], ["tuned seed 0", "atk seed 0"],
    ]


def test_without_submitit_the_executor_names_the_extra_to_install(tmp_path: Path, sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "submitit", None)  # as if not installed
    with pytest.raises(ExecutorError) as raised:
        LocalSweep(sweep, tmp_path, "local")
    assert str(raised.value) == '--executor local needs submitit, which is not installed: pip install "gat-tui[cluster]"'
    with pytest.raises(ExecutorError, match=r"^--executor slurm needs submitit, which is not installed"):
        submit_slurm(sweep, tmp_path / "out", SlurmOptions())
    with pytest.raises(ExecutorError, match=r"^--executor slurm needs submitit, which is not installed"):  # --dry-run too
        executors.slurm_scripts(sweep, tmp_path / "out", SlurmOptions())


def test_slurm_submits_through_submitits_slurm_executor_by_default(tmp_path: Path, sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    submitit = pytest.importorskip("submitit")
    SlurmStandIn.arrays = []
    folders: list[Path] = []

    class Recording(SlurmStandIn):
        def __init__(self, folder: Path) -> None:
            folders.append(folder)
            super().__init__(folder)

    monkeypatch.setattr(submitit, "SlurmExecutor", Recording)
    assert submit_slurm(sweep, tmp_path / "out", SlurmOptions()) == [("100", 2), ("101", 2)]
    assert folders == [tmp_path / "out" / "submitit" / "%j"] * 2


def test_slurm_parameters_from_the_table_and_the_command_line(tmp_path: Path, sweep: Sweep) -> None:
    sweep.slurm.update({"time": "1:00:00", "cpus_per_task": 2, "exclusive": True, "setup": ["module load x"], "additional_parameters": {"mail-type": "END"}})
    parameters = slurm_parameters(sweep, SlurmOptions(gpus_per_task=0, array_parallelism=3))
    assert parameters == {
        "job_name": "gat-tui-ex", "time": 60, "signal_delay_s": 90, "cpus_per_task": 2, "exclusive": True, "setup": ["module load x"],
        "additional_parameters": {"mail-type": "END"}, "gpus_per_task": 0, "array_parallelism": 3,
    }
    with pytest.raises(ExecutorError, match=r"^--slurm-gpus-per-task -1: expected 0 or more$"):
        slurm_parameters(sweep, SlurmOptions(gpus_per_task=-1))
    assert slurm_parameters(sweep, SlurmOptions(array_parallelism=1))["array_parallelism"] == 1


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("cpus_per_task", -1, "a whole number >= 0"),
        ("cpus_per_task", True, "a whole number >= 0"),
        ("nodes", 1.5, "a whole number >= 0"),
        ("exclusive", [1], "a string or a number"),
        ("mem", {"a": 1}, "a string or a number"),
        ("mem", True, "a string or a number"),
        ("srun_args", ["-v", 1], "a list of strings (shell lines)"),
        ("teardown", "rm -r /tmp/x", "a list of strings (shell lines)"),
        ("additional_parameters", {"a": [1]}, 'a table of sbatch options, e.g. { mail-type = "END" }'),
        ("additional_parameters", ["a"], 'a table of sbatch options, e.g. { mail-type = "END" }'),
        ("use_srun", "yes", "true or false"),
    ],
)
def test_each_slurm_value_is_checked_by_its_kind(tmp_path: Path, sweep: Sweep, key: str, value: Any, expected: str) -> None:
    sweep.slurm[key] = value
    with pytest.raises(ExecutorError) as raised:
        slurm_parameters(sweep, SlurmOptions())
    assert str(raised.value) == f"{sweep.path}: key 'slurm.{key}' = {value!r} is not allowed; expected {expected}"


@pytest.mark.parametrize(("key", "value"), [("mem", 16), ("mem", "16G"), ("exclusive", "user"), ("exclusive", True), ("comment", 1.5), ("use_srun", False), ("nodes", 0)])
def test_values_of_the_right_kind_pass_as_written(sweep: Sweep, key: str, value: Any) -> None:
    sweep.slurm[key] = value
    assert slurm_parameters(sweep, SlurmOptions())[key] == value


def test_a_sweep_built_in_code_is_named_in_slurm_errors(sweep: Sweep) -> None:
    built = Sweep("code", "", 1, sweep.runs, (), slurm={"map_count": 3})
    with pytest.raises(ExecutorError) as raised:
        slurm_parameters(built, SlurmOptions())
    assert str(raised.value) == "sweep code: key 'slurm.map_count' cannot be set here: the array's size, one task per job"


def test_the_signal_comes_late_enough_in_a_short_job() -> None:
    # half the limit less 30 s, at least 5 s, at most submitit's default
    assert [signal_delay_for(minutes, 90) for minutes in (1, 2, 3, 4, 60)] == [5, 30, 60, 90, 90]
    assert signal_delay_for(60, 120) == 120 and signal_delay_for(3, 45) == 45
    # whole seconds: sbatch's --signal=USR2@60 takes no 60.0
    assert all(type(signal_delay_for(minutes, 90)) is int for minutes in (1, 2, 3, 4, 60))


def test_cpu_jobs_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(executors.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert [cpu_threads_per_job(at_once, False) for at_once in (1, 2, 3, 8, 9)] == [None, 4, 2, 1, 1]
    assert cpu_threads_per_job(2, True) is None  # on GPUs: torch's own
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads_per_job(2, False) is None  # the user's setting applies


def test_without_sched_getaffinity_the_cores_are_the_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    # macOS has no os.sched_getaffinity: the machine's CPU count, or one core where it is unknown
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delattr(executors.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(executors.os, "cpu_count", lambda: 6)
    assert [cpu_threads_per_job(at_once, False) for at_once in (2, 3, 4)] == [3, 2, 1]
    monkeypatch.setattr(executors.os, "cpu_count", lambda: None)
    assert cpu_threads_per_job(2, False) == 1


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", " 3, 5 ,")
    assert visible_gpus() == ["3", "5"] and default_jobs() == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")  # fewer names than devices: counted from 0
    assert visible_gpus() == ["0", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6,8")
    assert visible_gpus() == ["4", "6"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")  # not set: the devices counted from 0
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert visible_gpus() == ["0"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert visible_gpus() == [] and default_jobs() == 1

    def broken() -> bool:
        raise RuntimeError("driver")

    monkeypatch.setattr(torch.cuda, "is_available", broken)
    assert visible_gpus() == []


def test_a_jobs_log_has_one_line_per_message_epoch_checkpoint_and_end(capsys: pytest.CaptureFixture[str]) -> None:
    log = executors._log_line
    log(LogMessage("warning", "slow"))
    log(EpochSummary(3, 120, 1.0, 0.91234, None, 0.5, None, None, None, True, 2.0))
    log(CheckpointSaved("/r/last.safetensors", 3, 120, "epoch"))
    log(RunFinished("finished", 4, 160, 9.0, 3, 0.9))
    log(StepMetrics.__new__(StepMetrics))  # other events: nothing
    assert capsys.readouterr().out.splitlines() == [
        "warning: slow",
        "epoch 3 (step 120): val_acc_clean 0.9123",
        "checkpoint epoch: /r/last.safetensors (epoch 3, step 120)",
        "run finished after 4 epochs",
    ]


def test_outcomes_of_a_job_handle() -> None:
    outcome = executors._outcome
    assert outcome(Handle("1", ("waiting", "no choice"))) == ("waiting", "no choice")
    assert outcome(Handle("1", ["finished", "x"])) == ("failed", "unexpected job result ['finished', 'x']")
    assert outcome(Handle("1", ("finished",))) == ("failed", "unexpected job result ('finished',)")
    assert outcome(Handle("1", RuntimeError("line one\nline two\nline three"))) == ("failed", "RuntimeError: line one line two")
    assert outcome(Handle("1", RuntimeError("x" * 600))) == ("failed", ("RuntimeError: " + "x" * 600)[:500])


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_sweep_job_travels_without_its_thread_and_runs_its_one_job(tmp_path: Path, sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    job = Job("train", 1, sweep.runs[0])
    sweep_job = SweepJob(sweep, tmp_path / "out", job, tmp_path / "data")
    sweep_job._stop = threading.Event()
    copy = pickle.loads(pickle.dumps(sweep_job))
    assert (copy.sweep, copy.out, copy.job, copy.data_dir) == (sweep, tmp_path / "out", job, tmp_path / "data")
    assert (copy._stop, copy._thread, copy._result) == (None, None, [])
    ran: list[tuple[Job, Path, Path | None]] = []

    def run_job(runner: Any, job: Job) -> tuple[str, str]:
        ran.append((job, runner.layout.root, runner.data_dir))
        assert list(runner.subscribers_for(job)) == [executors._log_line]  # the training's events go to the job's log
        return "finished", "trained"

    monkeypatch.setattr(executors.SweepRunner, "run_job", run_job)
    assert copy() == ("finished", "trained")
    assert ran == [(job, tmp_path / "out", tmp_path / "data")]

    def broken(runner: Any, job: Job) -> tuple[str, str]:
        raise RuntimeError("lost")

    monkeypatch.setattr(executors.SweepRunner, "run_job", broken)
    assert copy() == ("failed", "the job's thread ended without a result")


def test_sigterm_during_a_job_stops_its_training_and_the_handlers_come_back(tmp_path: Path, sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    numbers = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
    # handlers of the test's own first: the process's may do anything when called (mutmut's worker
    # ends itself on SIGTERM), and the job must neither call them nor leave them changed
    outside: list[int] = []

    def not_the_jobs(number: int, frame: object) -> None:
        outside.append(number)

    originals = {number: signal.signal(number, not_the_jobs) for number in numbers}
    try:
        seen: list[bool] = []

        def run_job(runner: Any, job: Job) -> tuple[str, str]:
            for number in numbers:  # scancel's SIGTERM, Ctrl-C, and SIGUSR1 outside submitit: checkpoint and stop
                runner.stop.clear()
                signal.getsignal(number)(number, None)  # type: ignore[operator]
                seen.append(runner.stop.is_set())
            return "stopped", "at step 2"

        monkeypatch.setattr(executors.SweepRunner, "run_job", run_job)
        assert SweepJob(sweep, tmp_path / "out", Job("train", 0, sweep.runs[0]), None)() == ("stopped", "at step 2")
        assert seen == [True, True, True] and outside == []
        assert all(signal.getsignal(number) is not_the_jobs for number in numbers)
    finally:
        for number, handler in originals.items():
            signal.signal(number, handler)


def test_a_preempted_training_stops_before_it_is_requeued(tmp_path: Path, sweep: Sweep) -> None:
    pytest.importorskip("submitit")
    job = Job("train", 0, sweep.runs[0])
    sweep_job = SweepJob(sweep, tmp_path / "out", job, None)
    stop = threading.Event()

    def training() -> None:
        stop.wait(10)
        sweep_job._result.append(("stopped", "checkpointed at step 7"))

    sweep_job._stop, sweep_job._thread = stop, threading.Thread(target=training)
    sweep_job._thread.start()
    sweep_job.checkpoint()
    assert stop.is_set() and not sweep_job._thread.is_alive()
    assert (read_state(tmp_path / "out", job) or {})["state"] == "requeued"
    # a job that finished inside the warning window is not marked requeued
    done = SweepJob(sweep, tmp_path / "done", job, None)
    done._stop, done._thread, done._result = threading.Event(), threading.Thread(target=lambda: None), [("finished", "ok")]
    done._thread.start()
    done.checkpoint()
    assert read_state(tmp_path / "done", job) is None
    # an evaluation has no checkpoint: it is requeued whatever it had done, without waiting for it
    evaluation = SweepJob(sweep, tmp_path / "eval", Job("eval", 0, sweep.runs[0]), None)
    evaluation._stop, evaluation._thread, evaluation._result = threading.Event(), threading.Thread(target=lambda: None), [("finished", "ok")]
    evaluation.checkpoint()
    assert not evaluation._stop.is_set() and (read_state(tmp_path / "eval", evaluation.job) or {})["state"] == "requeued"


def test_a_preempted_job_is_marked_requeued_and_resubmitted_afresh(tmp_path: Path, sweep: Sweep) -> None:
    pytest.importorskip("submitit")
    job = Job("train", 0, sweep.runs[0])
    sweep_job = SweepJob(sweep, tmp_path / "out", job, None)
    delayed = sweep_job.checkpoint()
    again = delayed.function
    assert isinstance(again, SweepJob) and again is not sweep_job and (again.job, again.out) == (job, tmp_path / "out")
    state = read_state(tmp_path / "out", job) or {}
    assert (state["state"], state["message"]) == ("requeued", "preempted or near its time limit: checkpointed and requeued by submitit")


# --- local and debug executors, with a stand-in submitit ------------------------------------------


class LocalStandIn:
    """submitit's LocalExecutor: records parameters and submissions; results scripted by job name."""

    def __init__(self, results: dict[str, Any]) -> None:
        self.results, self.parameters, self.submitted = results, dict[str, Any](), list[tuple[str, dict[str, Any]]]()
        self.jobs: list[SweepJob] = []

    def update_parameters(self, **parameters: Any) -> None:
        self.parameters.update(parameters)

    def submit(self, job: SweepJob) -> Handle:
        name = job_name(job.job)
        self.submitted.append((name, dict(self.parameters)))
        self.jobs.append(job)
        return Handle(f"local-{len(self.submitted)}", self.results.get(name, ("finished", "ok")), polls=1)


class SubmititStandIn:
    def __init__(self, executor: LocalStandIn) -> None:
        self.executor, self.folders = executor, list[Path]()

    def LocalExecutor(self, folder: Path) -> LocalStandIn:  # noqa: N802 (submitit's name)
        self.folders.append(folder)
        return self.executor

    DebugExecutor = LocalExecutor


def local(sweep: Sweep, out: Path, results: dict[str, Any], kind: str = "local", **options: Any) -> tuple[LocalSweep, LocalStandIn, list[SweepProgress]]:
    progress: list[SweepProgress] = []
    runner = LocalSweep(sweep, out, kind, on_progress=progress.append, poll_seconds=0.0, **options)
    standin = LocalStandIn(results)
    runner.submitit = SubmititStandIn(standin)
    return runner, standin, progress


def test_local_runs_level_by_level_and_reports_each_job(tmp_path: Path, sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(executors.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    out = tmp_path / "out"
    runner, standin, progress = local(sweep, out, {"atk seed 1": ("failed", "boom")}, at_once=2, data_dir=tmp_path / "data")
    runner.gpus = []
    assert runner.run() == "failed"
    assert standin.parameters["timeout_min"] == LOCAL_TIMEOUT_MIN
    assert [name for name, _ in standin.submitted] == ["base seed 0", "base seed 1", "atk seed 0", "atk seed 1"]
    assert standin.submitted[0][1]["setup"] == ["export CUDA_VISIBLE_DEVICES=''", "export OMP_NUM_THREADS=2"]  # 4 cores, 2 at once
    ended = [(p.job, p.state, p.done, p.total, p.message) for p in progress if p.state != "running"]
    assert ended == [
        ("base seed 0", "finished", 1, 4, "ok"), ("base seed 1", "finished", 2, 4, "ok"),
        ("atk seed 0", "finished", 3, 4, "ok"), ("atk seed 1", "failed", 4, 4, "boom"),
    ]
    assert [(p.job, p.done) for p in progress if p.state == "running"] == [("base seed 0", 0), ("base seed 1", 0), ("atk seed 0", 2), ("atk seed 1", 2)]
    assert read_submitted(out)["ids"] == {"train--base--seed-0": "local-1", "train--base--seed-1": "local-2", "train--atk--seed-0": "local-3", "train--atk--seed-1": "local-4"}
    assert (read_submitted(out)["executor"], read_submitted(out)["seeds"]) == ("local", 2)
    assert [(job.sweep is sweep, job.out, job.data_dir) for job in standin.jobs] == [(True, out, tmp_path / "data")] * 4


def test_local_takes_the_visible_gpus_one_job_per_gpu(tmp_path: Path, sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executors, "visible_gpus", lambda: ["3", "5"])
    assert (LocalSweep(sweep, tmp_path, "local").gpus, LocalSweep(sweep, tmp_path, "local").at_once) == (["3", "5"], 2)
    assert LocalSweep(sweep, tmp_path, "local", at_once=3).at_once == 3
    assert LocalSweep(sweep, tmp_path, "debug").gpus == []


def test_local_shares_gpus_round_robin_by_slot(tmp_path: Path, sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # on GPUs no thread count is set, whatever the cores
    monkeypatch.setattr(executors.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    runner, standin, _ = local(sweep, tmp_path / "out", {}, at_once=3)
    runner.gpus = ["4", "7"]
    assert runner.run() == "finished"
    assert [parameters["setup"] for _, parameters in standin.submitted[:2]] == [["export CUDA_VISIBLE_DEVICES=4"], ["export CUDA_VISIBLE_DEVICES=7"]]


def test_a_job_whose_process_died_is_marked_failed_and_a_waiting_one_counts_as_failed(tmp_path: Path, sweep: Sweep) -> None:
    out = tmp_path / "out"
    results = {
        "base seed 0": RuntimeError("killed by signal 9"), "base seed 1": ("waiting", "no choice"), "atk seed 0": ("bogus", "?"),
        "atk seed 1": MemoryError("out of memory"),
    }
    runner, standin, progress = local(sweep, out, results, at_once=1)
    runner.gpus = []
    submit = standin.submit

    def started(job: SweepJob) -> Handle:  # the job's process marks itself running before it dies
        if job_name(job.job) == "atk seed 1":
            write_state(out, job.job, "atk seed 1", "running")
        return submit(job)

    standin.submit = started  # type: ignore[method-assign]
    assert runner.run() == "failed"
    state = read_state(out, Job("train", 0, sweep.runs[0])) or {}
    assert (state["job"], state["state"], state["message"]) == ("base seed 0", "failed", "RuntimeError: killed by signal 9")  # it said queued
    state = read_state(out, Job("train", 1, sweep.runs[1])) or {}
    assert (state["job"], state["state"], state["message"]) == ("atk seed 1", "failed", "MemoryError: out of memory")  # it said running
    assert (read_state(out, Job("train", 1, sweep.runs[0])) or {})["state"] == "queued"  # the job's own state is its to write
    ended = {p.job: (p.state, p.message) for p in progress if p.state != "running"}
    assert ended["atk seed 0"] == ("failed", "unexpected result 'bogus': ?")
    # one at a time: each job starts once the one before it has ended
    assert [(p.job, p.done) for p in progress if p.state == "running"] == [("base seed 0", 0), ("base seed 1", 1), ("atk seed 0", 2), ("atk seed 1", 3)]


@pytest.mark.parametrize("state", ["failed", "waiting"])
def test_one_failed_or_waiting_job_fails_the_sweep(tmp_path: Path, sweep: Sweep, state: str) -> None:
    out = tmp_path / "out"
    finished = out / "runs" / "atk" / "seed-0"  # done before: not submitted, but counted
    finished.mkdir(parents=True)
    (finished / "summary.json").write_text('{"status": "finished"}')
    runner, _, progress = local(sweep, out, {"base seed 0": (state, "why")}, at_once=1)
    runner.gpus = []
    assert runner.run() == "failed"  # the jobs after it finished, in its level and the next
    assert [(p.job, p.done) for p in progress if p.state == "running"] == [("base seed 0", 1), ("base seed 1", 2), ("atk seed 1", 3)]
    state_of_atk = read_state(out, Job("train", 1, sweep.runs[1])) or {}
    assert (state_of_atk["job"], state_of_atk["message"]) == ("atk seed 1", "waiting for a free slot (local executor)")


def test_a_stop_asks_running_jobs_to_stop_and_unqueues_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "three.toml"  # three levels: the trainings, the attackers, their evaluation
    path.write_text(SWEEP + '[[evaluations]]\nattack = "fgm-l2"\nruns = ["atk"]\n')
    sweep = load_sweep(path)
    out = tmp_path / "out"
    stop = threading.Event()
    runner, standin, _ = local(sweep, out, {}, at_once=1, stop=stop)
    runner.gpus = []
    signals: list[int] = []

    class Process:
        def poll(self) -> None:
            return None

        def send_signal(self, number: int) -> None:
            signals.append(number)

    submit = standin.submit

    def submit_then_stop(job: SweepJob) -> Handle:
        stop.set()
        handle = submit(job)
        handle._process = Process()  # type: ignore[attr-defined]
        return handle

    standin.submit = submit_then_stop  # type: ignore[method-assign]
    assert runner.run() == "stopped"
    assert [name for name, _ in standin.submitted] == ["base seed 0"] and signals == [signal.SIGTERM]
    assert (read_state(out, Job("train", 0, sweep.runs[0])) or {})["state"] == "queued"  # handed over: its process says
    assert [state_file(out, Job("train", seed, entry)).exists() for entry in sweep.runs for seed in (0, 1)] == [True, False, False, False]
    assert not any(state_file(out, Job("eval", seed, sweep.runs[1], sweep.evaluations[0])).exists() for seed in (0, 1))


def test_an_evaluation_waits_for_every_run_it_reads(tmp_path: Path) -> None:
    path = tmp_path / "chain.toml"
    path.write_text(
        'seeds = 1\n[[runs]]\npreset = "p"\nlabel = "base"\n[[runs]]\npreset = "p"\nlabel = "atk"\nattack_target = "base"\n'
        '[[runs]]\npreset = "p"\nlabel = "atk2"\nattack_target = "atk"\n[[evaluations]]\nattack = "fgm-l2"\nruns = ["base"]\n'
    )
    levels = [[job_name(job) for job in level] for level in executors.dependency_levels(load_sweep(path))]
    assert levels == [["base seed 0"], ["atk seed 0", "eval fgm-l2-0 of base seed 0"], ["atk2 seed 0"]]


def test_skipped_and_stopped_jobs_are_reported_as_such(tmp_path: Path, sweep: Sweep) -> None:
    results = {"base seed 0": ("skipped", "already finished"), "base seed 1": ("stopped", "at step 4")}
    runner, _, progress = local(sweep, tmp_path / "out", results, at_once=2)
    runner.gpus = []
    runner.run()
    ended = {p.job: (p.state, p.message) for p in progress if p.state != "running"}
    assert (ended["base seed 0"], ended["base seed 1"]) == (("skipped", "already finished"), ("stopped", "at step 4"))


def test_jobs_already_done_are_not_submitted_and_a_stop_unqueues_the_rest(tmp_path: Path, sweep: Sweep) -> None:
    out = tmp_path / "out"
    run_dir = out / "runs" / "base" / "seed-0"
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text('{"status": "finished"}')
    stop = threading.Event()
    runner, standin, progress = local(sweep, out, {}, at_once=1, stop=stop)
    runner.gpus = []
    original = standin.submit

    def submit_then_stop(job: SweepJob) -> Handle:
        stop.set()  # Ctrl-C while the first job runs
        return original(job)

    standin.submit = submit_then_stop  # type: ignore[method-assign]
    assert runner.run() == "stopped"
    assert [name for name, _ in standin.submitted] == ["base seed 1"]
    assert progress[0] == SweepProgress("base seed 1", "running", 1, 4)  # one of four was done already
    for seed in (0, 1):
        assert not state_file(out, Job("train", seed, sweep.runs[1])).exists()  # never submitted: no longer queued


def test_local_without_gpus_runs_one_job_at_a_time_by_default_in_the_sweeps_submitit_folder(tmp_path: Path, sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executors, "visible_gpus", lambda: [])
    runner, standin, _ = local(sweep, tmp_path / "out", {})
    assert (runner.gpus, runner.at_once) == ([], 1)
    assert runner.run() == "finished"
    assert runner.submitit.folders == [tmp_path / "out" / "submitit" / "%j"]  # each job's log and pickles under the sweep's folder


def test_debug_runs_one_at_a_time_and_bad_options_are_refused(tmp_path: Path, sweep: Sweep) -> None:
    runner, standin, _ = local(sweep, tmp_path / "out", {}, kind="debug", at_once=4)
    assert (runner.at_once, runner.gpus) == (1, [])
    assert runner.run() == "finished"
    assert standin.parameters == {}  # no time limit, no devices: every job runs in this process
    assert runner.submitit.folders == [tmp_path / "out" / "submitit" / "%j"]
    with pytest.raises(ExecutorError, match=r"^--executor 'slurm': LocalSweep runs 'local' or 'debug'$"):
        LocalSweep(sweep, tmp_path, "slurm")
    with pytest.raises(ExecutorError, match=r"^--jobs 0: expected at least 1$"):
        LocalSweep(sweep, tmp_path, "local", at_once=0)


def test_a_job_stopped_from_outside_stops_the_sweep_as_the_sequential_runner_does(tmp_path: Path, sweep: Sweep) -> None:
    # its training got a SIGTERM that this process did not send: the sweep must not say "finished"
    # with that run unfinished, nor start the jobs that were waiting
    out = tmp_path / "out"
    runner, standin, progress = local(sweep, out, {"base seed 0": ("stopped", "at step 4")}, at_once=1)
    runner.gpus = []
    assert runner.run() == "stopped"
    assert [name for name, _ in standin.submitted] == ["base seed 0"]
    assert [(p.job, p.state) for p in progress if p.state != "running"] == [("base seed 0", "stopped")]
    assert not any(state_file(out, Job("train", seed, entry)).exists() for entry in sweep.runs for seed in (0, 1) if (entry, seed) != (sweep.runs[0], 0))
