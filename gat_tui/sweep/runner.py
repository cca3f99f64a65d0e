"""Running a sweep's jobs into one output folder, resumably and in shards.

    OUT/sweep.toml                             a copy of the sweep file
    OUT/runs/<label>/seed-<k>/                 a run folder per training (see run_folder.py)
    OUT/evals/<evaluation>/<label>/seed-<k>.json   one `gat-tui eval` JSON per evaluated run
    OUT/tuning/runs/<label>/<point>/seed-<k>/  a tuning run per grid point and tuning seed (`tune`)
    OUT/tuning/<label>.json                    the tuning grid's validation table and the choice

A finished run (summary.json says so) or an existing evaluation file is skipped; a run with a
checkpoint but no finished summary is resumed from it; so re-running a sweep after an
interruption carries on, and shards (`--shard I/N`, by seed) write side by side. A tuned
entry's repeat runs take the setting chosen from its finished tuning runs, recomputed each
time; while some tuning run (of another shard) has not finished, they end 'waiting' and the
shard's result is 'waiting': run it again once the other shards are done.
"""

from __future__ import annotations

import json
import shutil
import threading
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gat_tui.atomic import describe_os_error
from gat_tui.config import ConfigError
from gat_tui.events import Subscriber
from gat_tui.runs.folder import RunPaths
from gat_tui.runs.lock import lock_holder
from gat_tui.runs.status import run_status
from gat_tui.sweep.jobstate import write_state, write_submitted
from gat_tui.sweep.plan import Job, Sweep, jobs
from gat_tui.sweep.tuning import choose, tuning_run_dir, write_choice


@dataclass(frozen=True)
class SweepProgress:
    """Where the sweep stands: a job starts ('running') or ends (finished/skipped/stopped/failed/waiting)."""

    job: str
    state: str
    done: int
    total: int
    message: str = ""


@dataclass(frozen=True)
class SweepLayout:
    root: Path

    def run_dir(self, label: str, seed: int) -> Path:
        return self.root / "runs" / label / f"seed-{seed}"

    def eval_file(self, evaluation: str, label: str, seed: int) -> Path:
        return self.root / "evals" / evaluation / label / f"seed-{seed}.json"

    def job_run_dir(self, job: Job) -> Path:
        """The run folder a training or tuning job writes (an evaluation's: the run it attacks)."""
        if job.point is not None:  # a tuning run: seed is the tuning seed's index
            return tuning_run_dir(self.root, job.entry.label, job.point.name, job.seed)
        return self.run_dir(job.entry.label, job.seed)

    def is_done(self, job: Job) -> bool:
        """The job's result is in the folder already: a finished run, or an evaluation's file."""
        if job.evaluation is not None:
            return self.eval_file(job.evaluation.name, job.entry.label, job.seed).exists()
        return run_status(self.job_run_dir(job)) == "finished"


def job_name(job: Job) -> str:
    if job.point is not None:
        return f"tune {job.entry.label} {job.point.name} tuning seed {job.seed}"
    kind = f"eval {job.evaluation.name} of " if job.evaluation is not None else ""
    return f"{kind}{job.entry.label} seed {job.seed}"


class SweepRunner:
    """Runs one shard of a sweep; `subscribers_for(job)` gives each training's event subscribers."""

    def __init__(
        self,
        sweep: Sweep,
        out: Path,
        shard: int = 0,
        shards: int = 1,
        stop: threading.Event | None = None,
        data_dir: Path | None = None,
        on_progress: Callable[[SweepProgress], None] | None = None,
        subscribers_for: Callable[[Job], Iterable[Subscriber]] | None = None,
    ) -> None:
        self.sweep, self.layout = sweep, SweepLayout(out)
        self.jobs = jobs(sweep, shard, shards)
        self.stop = stop or threading.Event()
        self.data_dir = data_dir
        self.on_progress = on_progress or (lambda progress: None)
        self.subscribers_for = subscribers_for or (lambda job: ())

    def prepare(self, executor: str = "sequential") -> None:
        """The output folder, its copy of the sweep file, and the seeds planned (for `--status`)."""
        check_sweep_out(self.layout.root, self.sweep)
        self.layout.root.mkdir(parents=True, exist_ok=True)
        if self.sweep.path is not None and not (self.layout.root / "sweep.toml").exists():
            shutil.copyfile(self.sweep.path, self.layout.root / "sweep.toml")
        write_submitted(self.layout.root, executor, self.sweep.seeds, {})

    def run(self) -> str:
        """'finished' when every job of this shard is done, else 'stopped', 'failed', or 'waiting'
        (no failure, but repeat runs wait for tuning runs of another shard)."""
        self.prepare()
        failures = waits = 0
        for done, job in enumerate(self.jobs):
            if self.stop.is_set():
                return "stopped"
            name = job_name(job)
            self.on_progress(SweepProgress(name, "running", done, len(self.jobs)))
            state, message = self.run_job(job)
            failures += state == "failed"
            waits += state == "waiting"
            self.on_progress(SweepProgress(name, state, done + 1, len(self.jobs), message))
            if state == "stopped":
                return "stopped"
        return "failed" if failures else "waiting" if waits else "finished"

    def run_job(self, job: Job) -> tuple[str, str]:
        """Run one job (any job of the sweep, whatever this runner's shard) and record its state
        file; returns its state (finished/skipped/stopped/failed/waiting) and a message."""
        root, name = self.layout.root, job_name(job)
        if job.kind in ("train", "tune") and lock_holder(self.layout.job_run_dir(job)) is not None:
            return self._train(job)  # the state file belongs to the process that trains it
        write_state(root, job, name, "running")
        try:
            state, message = self._train(job) if job.kind in ("train", "tune") else self._evaluate(job)
        except Exception as error:  # one broken job must not sink the whole sweep
            state, message = "failed", f"{type(error).__name__}: {error}"
        write_state(root, job, name, state, message)
        return state, message

    def _train(self, job: Job) -> tuple[str, str]:
        from gat_tui.presets import load_named_preset
        from gat_tui.training.control import TrainingControl
        from gat_tui.training.request import TrainingRequest
        from gat_tui.training.trainer import Trainer

        run_dir = self.layout.job_run_dir(job)
        # a tuning run also selects its checkpoint by the entry's tune_metric (tuning_overrides)
        seed, extra = job.training_seed, list(job.entry.tuning_overrides(job.point)) if job.point is not None else []
        status = run_status(run_dir)
        if status == "finished":
            return "skipped", "already finished"
        if status == "running":
            holder = lock_holder(run_dir)
            return "failed", f"{run_dir} is being trained by {holder.describe() if holder else 'another process'} (a second shard?)"
        if job.point is None and job.entry.tuning:
            tuning = choose(self.layout.root, job.entry)
            if tuning.chosen is None:
                return "waiting", f"no tuned setting yet: {tuning.waiting}; run this sweep (shard) again once they have"
            write_choice(self.layout.root, tuning)
            extra = list(tuning.chosen_overrides)
        overrides = list(job.entry.overrides) + extra + [f"seed={seed}"]
        if job.entry.attack_target is not None:
            target = RunPaths(self.layout.run_dir(job.entry.attack_target, job.seed)).best_checkpoint
            if run_status(target.parent.parent) != "finished":
                return "failed", f"its attack target {job.entry.attack_target} seed {job.seed} has not finished"
            overrides.append(f"attack.classifier={json.dumps(str(target))}")
        _, config = load_named_preset(job.entry.preset, overrides)
        # a killed run goes on from its checkpoint; one killed before its first starts again
        resume_from = RunPaths(run_dir).last_checkpoint if RunPaths(run_dir).last_checkpoint.exists() else None
        request = TrainingRequest(config, run_dir, self.data_dir, resume_from)
        trainer = Trainer(request, subscribers=self.subscribers_for(job), control=TrainingControl(stop=self.stop))
        finished = trainer.run()
        return finished.status, finished.message

    def _evaluate(self, job: Job) -> tuple[str, str]:
        evaluation = job.evaluation
        assert evaluation is not None
        out = self.layout.eval_file(evaluation.name, job.entry.label, job.seed)
        if out.exists():
            return "skipped", "already evaluated"
        run_dir = self.layout.run_dir(job.entry.label, job.seed)
        if run_status(run_dir) != "finished":
            return "failed", f"{job.entry.label} seed {job.seed} has not finished training"
        source = None
        if evaluation.source is not None and evaluation.source != job.entry.label:
            source = RunPaths(self.layout.run_dir(evaluation.source, job.seed)).best_checkpoint
        from gat_tui.sweep.evaluate import evaluate_run

        evaluate_run(RunPaths(run_dir).best_checkpoint, source, evaluation, self.data_dir, out)
        return "finished", str(out)


def check_sweep_out(root: Path, sweep: Sweep) -> None:
    """Refuse an output folder that cannot take this sweep: a file, or a folder holding another sweep file.

    Runs of two sweep files in one folder would mix in its report, under the first file's name.
    ConfigError (the sweep's error type) names the folder and both files.
    """
    try:
        if root.exists() and not root.is_dir():
            raise ConfigError(f"--out {root}: is a file; expected a folder for the sweep")
        held = root / "sweep.toml"
        if sweep.path is None or not held.is_file():
            return
        if _toml_table(held) != _toml_table(sweep.path):
            raise ConfigError(
                f"--out {root}: holds the sweep of {held}, which differs from {sweep.path}; "
                "run that sweep file again to resume it, or choose another --out folder for this one"
            )
    except OSError as error:  # e.g. a name longer than the file system takes
        raise ConfigError(f"--out: {describe_os_error(error, 'cannot use')}") from None


def _toml_table(path: Path) -> dict[str, Any]:
    """The parsed file; one that does not parse stands for its bytes (then only an identical file counts as the same)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError):
        return {"unparsed": path.read_bytes().hex()}
