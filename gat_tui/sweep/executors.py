"""Running a sweep's jobs through submitit: as separate local processes, or as Slurm job arrays.

`--executor sequential` (the default) is `SweepRunner.run`: every job one after another in this
process. The others hand each job to submitit (the `cluster` extra) as a `SweepJob`, a callable
that submitit pickles into OUT/submitit/ and runs in another process, which runs that one job
with `SweepRunner.run_job` into the same sweep folder. So a job run by any executor writes the
same files as the sequential sweep, and `gat-tui report` cannot tell them apart.

Dependencies: jobs run in dependency levels (`dependency_levels`): level 0 holds the tuning runs
and the plain trainings; a tuned entry's repeat runs come one level after its tuning runs, an
attacker one level after its target, an evaluation one level after the runs it reads.
- `local` and `debug` run one level at a time and wait for it (at most `--jobs` processes at once);
- `slurm` submits one job array per level at once, each with `--dependency=afterany:<the previous
  level's array>`, and returns: nothing waits on the login node. `afterany`, not `afterok`: one
  failed run (a diverged learning rate) must not cancel every later level; a job whose inputs are
  missing fails on its own with a message naming them, as in a sequential sweep.

Preemption and time limits, in a job's process (`SweepJob.__call__`):
- submitit's signal (SIGUSR2, which the sbatch script asks Slurm to send 90 s before the time
  limit, less for a limit under 4 minutes: `signal_delay_for`) and SIGUSR1 call `SweepJob.checkpoint`: the training stops at its next step boundary and
  writes its checkpoint (the trainer's own stop path), and submitit requeues the job, which then
  resumes from the run folder's checkpoint: the same resume as `gat-tui resume`, bit-exact;
- SIGTERM and SIGINT checkpoint and stop without a requeue: `scancel` sends SIGTERM too, and a
  job the user cancelled must not come back. Slurm's own preemption (PreemptMode=REQUEUE) requeues
  the job itself after SIGTERM; otherwise running the sweep again resumes it.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from gat_tui.allocator import tune_allocator
from gat_tui.config import ConfigError
from gat_tui.events import CheckpointSaved, EpochSummary, Event, LogMessage, RunFinished
from gat_tui.sweep.jobstate import job_key, read_state, state_file, write_state, write_submitted
from gat_tui.sweep.plan import Job, Sweep, jobs
from gat_tui.sweep.runner import SweepLayout, SweepProgress, SweepRunner, job_name

EXECUTORS = ("sequential", "local", "slurm", "debug")
INSTALL_HINT = 'pip install "gat-tui[cluster]"'
SUBMITIT_FOLDER = "submitit"
# a local job has no time limit of its own: submitit's LocalExecutor would stop it after 2 minutes
LOCAL_TIMEOUT_MIN = 60 * 24 * 365
# Parameters gat-tui sets itself from the sweep's plan; the [slurm] table may not set them.
_MANAGED = {"dependency": "set by gat-tui from the sweep's dependency levels", "map_count": "the array's size, one task per job"}
# [slurm] keys that are submitit executor settings rather than sbatch parameters
_EXECUTOR_KEYS = {"max_num_timeout": 3}  # requeues after a time limit before a job gives up (submitit's default)


# submitit's Slurm parameters that take a count (their default is often None, so not told by it)
_WHOLE_NUMBERS = {
    "max_num_timeout", "nodes", "ntasks_per_node", "cpus_per_task", "cpus_per_gpu", "num_gpus", "gpus_per_node", "gpus_per_task",
    "signal_delay_s", "array_parallelism",
}


class ExecutorError(ConfigError):
    """An executor cannot run: submitit missing, a bad option or [slurm] key. The message says what to change."""


def require_submitit(executor: str) -> ModuleType:
    try:
        import submitit
    except ImportError:
        raise ExecutorError(f"--executor {executor} needs submitit, which is not installed: {INSTALL_HINT}") from None
    return submitit


# --- dependency levels ---------------------------------------------------------------------------


def dependency_levels(sweep: Sweep, planned: Sequence[Job] | None = None) -> list[list[Job]]:
    """The jobs in levels: every job's inputs (tuning runs, attack target, evaluated runs) lie in earlier levels."""
    planned = list(jobs(sweep)) if planned is None else list(planned)
    train_level: dict[tuple[str, int], int] = {}
    by_label = {entry.label: entry for entry in sweep.runs}

    def training(label: str, seed: int) -> int:
        key = (label, seed)
        if key not in train_level:
            entry = by_label[label]
            level = 1 if entry.tuning else 0
            if entry.attack_target is not None:
                level = max(level, training(entry.attack_target, seed) + 1)
            train_level[key] = level
        return train_level[key]

    levels: dict[int, list[Job]] = {}
    for job in planned:
        if job.kind == "tune":
            level = 0
        elif job.kind == "train":
            level = training(job.entry.label, job.seed)
        else:
            assert job.evaluation is not None
            sources = [job.entry.label] + ([job.evaluation.source] if job.evaluation.source else [])
            level = max(training(label, job.seed) for label in sources) + 1
        levels.setdefault(level, []).append(job)
    return [levels[level] for level in sorted(levels)]


# --- the callable submitit runs ------------------------------------------------------------------


class SweepJob:
    """One job of a sweep, as submitit pickles it and runs it in another process (or this one, `debug`)."""

    def __init__(self, sweep: Sweep, out: Path, job: Job, data_dir: Path | None) -> None:
        self.sweep, self.out, self.job, self.data_dir = sweep, out, job, data_dir
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._result: list[tuple[str, str]] = []

    def __getstate__(self) -> dict[str, Any]:
        # only what names the job travels; a requeued job starts afresh from the run folder
        return {"sweep": self.sweep, "out": self.out, "job": self.job, "data_dir": self.data_dir}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["sweep"], state["out"], state["job"], state["data_dir"])  # type: ignore[misc]

    def __call__(self) -> tuple[str, str]:
        """Run the job; returns its state (finished, skipped, stopped, failed, waiting) and message."""
        # submitit starts this process with `python -m submitit.core._submit`, not through the
        # gat-tui command, so it sets the allocator as the command would (GAT_TUI_MALLOC was
        # checked by the gat-tui process that submitted the job)
        tune_allocator()
        stop = threading.Event()
        runner = SweepRunner(self.sweep, self.out, stop=stop, data_dir=self.data_dir, subscribers_for=lambda job: [_log_line])
        # The job runs in a thread so that this (main) thread stays free for the signal handlers:
        # submitit calls `checkpoint` from one, which waits here for the training's checkpoint.
        self._stop, self._result = stop, []
        self._thread = threading.Thread(target=lambda: self._result.append(runner.run_job(self.job)), name="sweep-job", daemon=True)
        restore = self._install_signal_handlers(stop)
        try:
            self._thread.start()
            while self._thread.is_alive():
                self._thread.join(0.2)
        finally:
            restore()
        _ignore_late_requeue_signals()
        return self._result[0] if self._result else ("failed", "the job's thread ended without a result")

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit on preemption or near the time limit: save, then requeue this job.

        Returns a DelayedSubmission of a fresh SweepJob: it finds the run folder's checkpoint and
        resumes from it (an evaluation, which has no checkpoint, starts again)."""
        from submitit.helpers import DelayedSubmission

        if self._stop is not None and self._thread is not None and self.job.kind != "eval":
            self._stop.set()
            self._thread.join()  # the trainer saves at its next step boundary and returns 'stopped'
        if not self._result or self._result[0][0] == "stopped" or self.job.kind == "eval":
            message = "preempted or near its time limit: checkpointed and requeued by submitit"
            write_state(self.out, self.job, job_name(self.job), "requeued", message)
        return DelayedSubmission(SweepJob(self.sweep, self.out, self.job, self.data_dir))

    def _install_signal_handlers(self, stop: threading.Event) -> Callable[[], None]:
        """SIGUSR1 joins submitit's requeue signal; SIGTERM and SIGINT checkpoint and stop. Returns the undo."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}

        def stop_here(signum: int, frame: FrameType | None) -> None:
            stop.set()

        requeue = _submitit_requeue_handler()
        signal.signal(signal.SIGTERM, stop_here)
        signal.signal(signal.SIGINT, stop_here)
        signal.signal(signal.SIGUSR1, requeue if requeue is not None else stop_here)

        def restore() -> None:
            for number, handler in previous.items():
                signal.signal(number, handler)

        return restore


def _log_line(event: Event) -> None:
    """A job's log (submitit's log file of it): its messages, epochs and checkpoints, one line each."""
    if isinstance(event, LogMessage):
        line = f"{event.level}: {event.text}"
    elif isinstance(event, EpochSummary):
        line = f"epoch {event.epoch} (step {event.step}): val_acc_clean {event.val_acc_clean:.4f}"
    elif isinstance(event, CheckpointSaved):
        line = f"checkpoint {event.reason}: {event.path} (epoch {event.epoch}, step {event.step})"
    elif isinstance(event, RunFinished):
        line = f"run {event.status} after {event.epochs_done} epochs"
    else:
        return
    print(line, flush=True)


def _ignore_late_requeue_signals() -> None:
    """In a submitit job whose work is done, SIGUSR1 and SIGUSR2 are ignored from now on.

    Slurm signals up to 30 s earlier than asked, so a job can end inside its warning window: on a
    real Slurm the signal came as the finished job's Python was shutting down, after it had reset
    submitit's handler to the default action, which killed it (exit 140, the job FAILED in
    `sacct` although its run had finished). Before that, submitit's handler would requeue a job
    that has nothing left to do. An ignored signal stays ignored through the interpreter's exit."""
    from_submitit = _submitit_requeue_handler()
    if from_submitit is None or threading.current_thread() is not threading.main_thread():
        return
    from submitit.core.job_environment import JobEnvironment

    for number in {signal.SIGUSR1, JobEnvironment._usr_sig()}:
        signal.signal(number, signal.SIG_IGN)


def _submitit_requeue_handler() -> Any:
    """submitit's checkpoint-and-requeue handler, when this process is a submitit job (not `debug`)."""
    try:
        from submitit.core.job_environment import JobEnvironment, SignalHandler
    except ImportError:
        return None
    handler = signal.getsignal(JobEnvironment._usr_sig())
    return handler if isinstance(getattr(handler, "__self__", None), SignalHandler) else None


# --- local processes and the debug executor ------------------------------------------------------


def visible_gpus() -> list[str]:
    """The CUDA devices this process may use, as CUDA_VISIBLE_DEVICES names them (none on a CPU machine)."""
    try:
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken driver: run on the CPU
        count = 0
    named = [name.strip() for name in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if name.strip()]
    return (named if len(named) >= count else [str(index) for index in range(count)])[:count]


def cpu_threads_per_job(at_once: int, on_gpus: bool) -> int | None:
    """Torch threads for each of `at_once` CPU jobs: the cores shared out, so that jobs side by side
    do not each start a thread per core and preempt one another (on two cores, two jobs of two
    threads each ran the smoke sweep 2.8x slower than one job at a time). None where the user set
    OMP_NUM_THREADS (theirs applies), on GPUs, or for one job at a time (torch's own default)."""
    if on_gpus or at_once <= 1 or "OMP_NUM_THREADS" in os.environ:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // at_once)


def default_jobs() -> int:
    """`--jobs` when not given: one process per visible GPU, else one on the CPU."""
    return max(len(visible_gpus()), 1)


@dataclass
class _Running:
    job: Job
    handle: Any  # a submitit Job
    slot: int


class LocalSweep:
    """Runs a sweep's jobs as submitit jobs, level by level, at most `at_once` at a time, and waits.

    `executor` is 'local' (a process per job: submitit's LocalExecutor, GPUs shared out round-robin
    by slot) or 'debug' (submitit's DebugExecutor: every job in this process, one at a time)."""

    def __init__(
        self,
        sweep: Sweep,
        out: Path,
        executor: str = "local",
        at_once: int | None = None,
        data_dir: Path | None = None,
        stop: threading.Event | None = None,
        on_progress: Callable[[SweepProgress], None] | None = None,
        poll_seconds: float = 0.2,
    ) -> None:
        if executor not in ("local", "debug"):
            raise ExecutorError(f"--executor {executor!r}: LocalSweep runs 'local' or 'debug'")
        if at_once is not None and at_once < 1:
            raise ExecutorError(f"--jobs {at_once}: expected at least 1")
        self.submitit = require_submitit(executor)
        self.sweep, self.out, self.kind, self.data_dir = sweep, out, executor, data_dir
        self.gpus = visible_gpus() if executor == "local" else []
        self.at_once = 1 if executor == "debug" else at_once or max(len(self.gpus), 1)
        self.stop = stop or threading.Event()
        self.on_progress = on_progress or (lambda progress: None)
        self.poll_seconds = poll_seconds
        self.runner = SweepRunner(sweep, out, data_dir=data_dir)

    def _executor(self) -> Any:
        folder = self.out / SUBMITIT_FOLDER / "%j"
        if self.kind == "debug":
            return self.submitit.DebugExecutor(folder=folder)
        executor = self.submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=LOCAL_TIMEOUT_MIN)
        return executor

    def run(self) -> str:
        """'finished', 'failed' (some job failed), or 'stopped'; as `SweepRunner.run`."""
        self.runner.prepare(self.kind)
        executor = self._executor()
        layout = self.runner.layout
        levels = [[job for job in level if not layout.is_done(job)] for level in dependency_levels(self.sweep)]
        total = len(jobs(self.sweep))
        done = total - sum(len(level) for level in levels)
        failures = 0
        for level in levels:
            for job in level:
                write_state(self.out, job, job_name(job), "queued", f"waiting for a free slot ({self.kind} executor)")
        for index, level in enumerate(levels):
            level_done, level_failures, stopped = self._run_level(executor, level, done, total)
            done += level_done
            failures += level_failures
            if stopped:
                for later in levels[index + 1 :]:  # never handed to submitit: not queued any more
                    for job in later:
                        state_file(self.out, job).unlink(missing_ok=True)
                return "stopped"
        return "failed" if failures else "finished"

    def _run_level(self, executor: Any, level: list[Job], done: int, total: int) -> tuple[int, int, bool]:
        pending, running = list(level), dict[int, _Running]()
        finished = failures = 0
        asked_to_stop = job_stopped = False
        while pending or running:
            if self.stop.is_set() and not asked_to_stop:
                asked_to_stop = True
                for job in pending:
                    state_file(self.out, job).unlink(missing_ok=True)
                pending.clear()
                for entry in running.values():
                    _ask_to_stop(entry.handle)
            while pending and len(running) < self.at_once:
                slot = min(set(range(self.at_once)) - set(running))
                job = pending.pop(0)
                self.on_progress(SweepProgress(job_name(job), "running", done + finished, total))
                running[slot] = _Running(job, self._submit(executor, job, slot), slot)
            for slot, entry in list(running.items()):
                if not _finished(entry.handle):
                    continue
                del running[slot]
                state, message = _outcome(entry.handle)
                if state not in ("finished", "skipped", "stopped", "failed", "waiting"):
                    state, message = "failed", f"unexpected result {state!r}: {message}"
                if state == "failed" and (read_state(self.out, entry.job) or {}).get("state") in ("running", "queued"):
                    # the process died before it could say so (killed, out of memory)
                    write_state(self.out, entry.job, job_name(entry.job), "failed", message)
                finished += 1
                failures += state in ("failed", "waiting")
                self.on_progress(SweepProgress(job_name(entry.job), state, done + finished, total, message))
                if state == "stopped" and not asked_to_stop and not job_stopped:
                    # a job stopped without this process asking (its training was signalled from outside):
                    # the sweep stops as the sequential runner does, so it is not reported finished with a
                    # run unfinished; jobs not started are unqueued, the running ones end on their own
                    job_stopped = True
                    for job in pending:
                        state_file(self.out, job).unlink(missing_ok=True)
                    pending.clear()
            if running:
                time.sleep(self.poll_seconds)
        return finished, failures, asked_to_stop or job_stopped

    def _submit(self, executor: Any, job: Job, slot: int) -> Any:
        callable_job = SweepJob(self.sweep, self.out, job, self.data_dir)
        if self.kind == "local":
            # one slot, one GPU (round-robin when --jobs exceeds the GPUs); none on a CPU machine
            device = self.gpus[slot % len(self.gpus)] if self.gpus else ""
            setup = [f"export CUDA_VISIBLE_DEVICES={shlex.quote(device)}"]
            threads = cpu_threads_per_job(self.at_once, bool(self.gpus))
            if threads is not None:
                setup.append(f"export OMP_NUM_THREADS={threads}")
            executor.update_parameters(setup=setup)
        with _children_ignore_sigint():
            handle = executor.submit(callable_job)
        write_submitted(self.out, self.kind, self.sweep.seeds, {job_key(job): str(handle.job_id)})
        return handle


class _children_ignore_sigint:
    """While submitting, SIGINT is ignored, and so are the processes started then (an ignored signal
    stays ignored across exec): a Ctrl-C then reaches the jobs' own handler (checkpoint and stop)
    and this process's, not submitit's controllers, which would kill the jobs a second later."""

    def __enter__(self) -> None:
        self.previous: Any = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _ask_to_stop(handle: Any) -> None:
    # SIGTERM to a local job's controller, which forwards it to the job: checkpoint and stop
    process = getattr(handle, "_process", None)
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)


def _finished(handle: Any) -> bool:
    return bool(handle.done())  # a DebugJob runs here and now when asked


def _outcome(handle: Any) -> tuple[str, str]:
    try:
        result = handle.result()
    except Exception as error:  # the process failed or was killed; submitit's message says how
        text = str(error).strip().splitlines()
        return "failed", f"{type(error).__name__}: {' '.join(text[:2])}"[:500]
    if isinstance(result, tuple) and len(result) == 2:
        return str(result[0]), str(result[1])
    return "failed", f"unexpected job result {result!r}"


# --- Slurm ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlurmOptions:
    """The command line's Slurm settings; None leaves the [slurm] table's (or submitit's) value."""

    partition: str | None = None
    time: str | None = None  # minutes, or [D-]HH:MM[:SS]
    gpus_per_task: int | None = None
    array_parallelism: int | None = None


def parse_slurm_time(text: str) -> int:
    """Minutes from 'MINUTES', 'HH:MM', 'HH:MM:SS' or 'D-HH[:MM[:SS]]' (submitit needs minutes: its
    time-out check computes with them); seconds round up."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if match is None:
        raise ExecutorError(f"--slurm-time {text!r}: expected minutes, HH:MM:SS or D-HH:MM:SS, e.g. 240 or 1-00:00:00")
    days, first, second, third = match.groups()
    if days is None and second is None:
        minutes = int(first)
    else:
        hours, mins, secs = int(first), int(second or 0), int(third or 0)
        minutes = int(days or 0) * 24 * 60 + hours * 60 + mins + (1 if secs else 0)
    if minutes < 1:
        raise ExecutorError(f"--slurm-time {text!r}: expected at least one minute")
    return minutes


def slurm_parameters(sweep: Sweep, options: SlurmOptions) -> dict[str, Any]:
    """The sweep file's [slurm] table, checked against submitit's parameters, then the command line's options."""
    from submitit.slurm.slurm import _get_default_parameters

    where = f"{sweep.path}" if sweep.path is not None else f"sweep {sweep.name}"
    known = _get_default_parameters()
    parameters: dict[str, Any] = {"job_name": f"gat-tui-{sweep.name}"}
    for key, value in sweep.slurm.items():
        if key in _MANAGED:
            raise ExecutorError(f"{where}: key 'slurm.{key}' cannot be set here: {_MANAGED[key]}")
        if key not in known and key not in _EXECUTOR_KEYS:
            expected = sorted((set(known) | set(_EXECUTOR_KEYS)) - set(_MANAGED))
            raise ExecutorError(f"{where}: key 'slurm.{key}' is not a submitit Slurm parameter; expected one of: {', '.join(expected)}")
        parameters[key] = _checked_slurm_value(where, key, value, known.get(key, _EXECUTOR_KEYS.get(key)))
    if options.partition is not None:
        parameters["partition"] = options.partition
    if options.time is not None:
        parameters["time"] = parse_slurm_time(options.time)
    elif "time" in parameters:
        parameters["time"] = parse_slurm_time(str(parameters["time"]))
    if "time" in parameters and "signal_delay_s" not in parameters:
        parameters["signal_delay_s"] = signal_delay_for(parameters["time"], known["signal_delay_s"])
    if options.gpus_per_task is not None:
        if options.gpus_per_task < 0:
            raise ExecutorError(f"--slurm-gpus-per-task {options.gpus_per_task}: expected 0 or more")
        parameters["gpus_per_task"] = options.gpus_per_task
    if options.array_parallelism is not None:
        if options.array_parallelism < 1:
            raise ExecutorError(f"--array-parallelism {options.array_parallelism}: expected at least 1")
        parameters["array_parallelism"] = options.array_parallelism
    return parameters


def signal_delay_for(time_min: int, default_s: int) -> int:
    """Seconds before the time limit for which gat-tui asks SIGUSR2 (`--signal=USR2@N`): submitit's
    default (90 s), or less for a short limit, so that the signal comes once the job has started.

    slurmctld checks time limits every 30 s and signals at the first check where at most N + 30 s
    are left ("up to 60 seconds earlier than specified", sbatch(1)). With a one-minute limit and
    90 s, a real Slurm signalled 4 s after the start, while the job's process was still importing,
    before submitit had its handler: SIGUSR2's default action killed the job (FAILED, no checkpoint,
    no requeue). Half the limit less 30 s (at least 5 s) puts the signal 25-55 s into a one-minute
    job and still one 30 s check before the limit is enforced; a `[slurm] signal_delay_s` wins."""
    return min(default_s, max(5, time_min * 60 // 2 - 30))


def _checked_slurm_value(where: str, key: str, value: Any, default: Any) -> Any:
    def refuse(expected: str) -> ExecutorError:
        return ExecutorError(f"{where}: key 'slurm.{key}' = {value!r} is not allowed; expected {expected}")

    if key in ("setup", "teardown", "srun_args"):
        if not isinstance(value, list) or not all(isinstance(line, str) for line in value):
            raise refuse("a list of strings (shell lines)")
        return list(value)
    if key == "additional_parameters":
        if not isinstance(value, dict) or not all(isinstance(item, (str, int, float, bool)) for item in value.values()):
            raise refuse('a table of sbatch options, e.g. { mail-type = "END" }')
        return dict(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise refuse("true or false")
        return value
    if key in _WHOLE_NUMBERS or (isinstance(default, int) and key != "time"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise refuse("a whole number >= 0")
        return value
    if isinstance(value, bool) and key != "exclusive":
        raise refuse("a string or a number")
    if not isinstance(value, (str, int, float, bool)):
        raise refuse("a string or a number")
    return value


class _ScriptSlurmExecutor:
    """Builds submitit's SlurmExecutor even where `srun` is missing (a laptop, a dry run): the
    submission script is written the same; only `sbatch` needs Slurm."""

    @staticmethod
    def make(folder: Path) -> Any:
        from submitit import SlurmExecutor

        class ScriptOnly(SlurmExecutor):
            @classmethod
            def affinity(cls) -> int:
                return 1

        return ScriptOnly(folder=folder)


def slurm_scripts(sweep: Sweep, out: Path, options: SlurmOptions) -> list[tuple[int, str]]:
    """For `--dry-run`: each level's (job count, sbatch script), as submitit would submit them."""
    require_submitit("slurm")
    parameters = slurm_parameters(sweep, options)
    layout = SweepLayout(out)
    levels = [[job for job in level if not layout.is_done(job)] for level in dependency_levels(sweep)]
    parameters.pop("max_num_timeout", None)  # the executor's, not the script's
    scripts = []
    for index, level in enumerate(level for level in levels if level):
        executor = _ScriptSlurmExecutor.make(out / SUBMITIT_FOLDER / "%j")
        executor.update_parameters(**_level_parameters(parameters, index, f"<array job id of level {index - 1}>"))
        if len(level) > 1:
            executor.parameters["map_count"] = len(level)
        scripts.append((len(level), executor._make_submission_file_text(executor._submitit_command_str, "dry-run")))
    return scripts


def _level_parameters(parameters: dict[str, Any], index: int, previous: str | None) -> dict[str, Any]:
    level = dict(parameters, job_name=f"{parameters['job_name']}-L{index}")
    if index > 0 and previous is not None:
        level["dependency"] = f"afterany:{previous}"
    return level


def submit_slurm(
    sweep: Sweep, out: Path, options: SlurmOptions, data_dir: Path | None = None, executor_factory: Callable[[Path], Any] | None = None
) -> list[tuple[str, int]]:
    """Submit one job array per dependency level, each after the previous (afterany); returns (array id, jobs) per level.

    `executor_factory(folder)` builds the submitit executor (tests pass one whose `sbatch` is a stub)."""
    submitit = require_submitit("slurm")
    parameters = slurm_parameters(sweep, options)
    runner = SweepRunner(sweep, out, data_dir=data_dir)
    runner.prepare("slurm")
    levels = [level for level in ([job for job in level if not runner.layout.is_done(job)] for level in dependency_levels(sweep)) if level]
    make = executor_factory or (lambda folder: submitit.SlurmExecutor(folder=folder))
    # how often a job may reach its time limit and be requeued: a training resumes with progress
    # each time, but an evaluation starts again, so submitit bounds it (3 by default)
    requeues = parameters.pop("max_num_timeout", None)
    submitted: list[tuple[str, int]] = []
    previous: str | None = None
    for index, level in enumerate(levels):
        executor = make(out / SUBMITIT_FOLDER / "%j")
        if requeues is not None:
            executor.max_num_timeout = requeues
        executor.update_parameters(**_level_parameters(parameters, index, previous))
        for job in level:
            write_state(out, job, job_name(job), "queued", f"submitted to Slurm (level {index})")
        try:
            handles = executor.submit_array([SweepJob(sweep, out, job, data_dir) for job in level])
        except Exception as error:  # sbatch refused it: say which level, and what went before
            for job in level:
                state_file(out, job).unlink(missing_ok=True)
            before = f"; levels before it were submitted: {', '.join(array for array, _ in submitted)}" if submitted else ""
            raise ExecutorError(f"submitting level {index} ({len(level)} jobs) failed: {type(error).__name__}: {error}{before}") from error
        write_submitted(out, "slurm", sweep.seeds, {job_key(job): str(handle.job_id) for job, handle in zip(level, handles)})
        previous = str(handles[0].job_id).split("_")[0]
        submitted.append((previous, len(level)))
    return submitted
