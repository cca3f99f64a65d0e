"""The training engine: epochs of a method's steps, validation, checkpoints, events.

It knows nothing of any user interface: it emits `gat_tui.events` to its subscribers and
answers its `TrainingControl` (stop, pause, save, evaluate) at step boundaries, saving a
checkpoint before it stops. A run resumed from a checkpoint continues with the same weights,
optimiser moments, random streams and data order, so on the CPU it ends bit-identical to the
same run left alone.

Host syncs happen only at report time: step figures are summed on the device and read back
every `train.log_every` steps, validation once per epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from gat_tui.atomic import describe_os_error
from gat_tui.checkpoints import Checkpoint, CheckpointError
from gat_tui.config import RunConfig, config_to_toml, with_absolute_data_path
from gat_tui.data import DataError
from gat_tui.device import DeviceError
from gat_tui.events import (
    PROGRESS_SECONDS,
    STEP_FIGURES,
    CheckpointSaved,
    EvaluationDone,
    Event,
    LogMessage,
    PauseChanged,
    RunFinished,
    RunStarted,
    StepMetrics,
    StepProgress,
    Subscriber,
)
from gat_tui.methods import MethodSetupError
from gat_tui.methods.base import Batch
from gat_tui.methods.gat_attack import GatAttackerTraining
from gat_tui.runs.folder import RunFolder, RunFolderError, write_summary
from gat_tui.runs.lock import RunLocked
from gat_tui.runs.status import read_summary
from gat_tui.training import checkpointing
from gat_tui.training.checkpointing import TrainingDiverged, best_file_epoch, restore_from, thread_count_warning
from gat_tui.training.control import TrainingControl
from gat_tui.training.generator_watch import GeneratorWatch
from gat_tui.training.request import TrainingRequest
from gat_tui.training.setup import TrainingSetup, prepare
from gat_tui.training.state import Progress, StateError
from gat_tui.training.step_metrics import PendingMetricsError, StepAccumulator
from gat_tui.training.validation import PgdBudget, SplitFigures, evaluate_split, preview_panel

if TYPE_CHECKING:
    from gat_tui.runs.tensorboard import TensorBoardLog

# errors that end a run with a message rather than a traceback
EXPECTED_ERRORS = (DataError, DeviceError, CheckpointError, MethodSetupError, StateError, RunFolderError, RunLocked)


class Trainer:
    """Runs one `TrainingRequest` into its run folder; `run()` returns how it ended."""

    def __init__(
        self,
        request: TrainingRequest,
        subscribers: Iterable[Subscriber] = (),
        control: TrainingControl | None = None,
    ) -> None:
        self.request = request
        # a new run records where its image folder is, whatever folder it is resumed from later
        self.config: RunConfig = with_absolute_data_path(request.config)
        self.folder = RunFolder(request.run_dir, resuming=request.resume_from is not None)
        self.paths = self.folder.paths
        self.subscribers = list(subscribers)
        self.control = control or TrainingControl()
        self.progress = Progress()
        self._started = time.perf_counter()
        self._paused_at: float | None = None  # while paused: the clock of `elapsed` stands still there
        self._thread_warning: str | None = None  # a resume at another torch thread count than the checkpoint's
        self.generator_watch = GeneratorWatch(self.config.method, self.config.eval.fgm_l2_eps, self.config.train.epochs)
        self._tensorboard: TensorBoardLog | None = None  # set once the run has started its event files
        self._data_note: str | None = None  # set on resume when the data differs from the checkpoint's
        self._pending: StepAccumulator | None = None  # step figures since the last report, across a stop and its resume

    def emit(self, event: Event) -> None:
        for subscriber in self.subscribers:
            subscriber(event)

    def _now(self) -> float:
        return self._paused_at if self._paused_at is not None else time.perf_counter()

    def elapsed(self) -> float:
        """Seconds of training, this run's earlier sessions included; time spent paused is left out."""
        return self.progress.elapsed + self._now() - self._started

    # -- the run's life ----------------------------------------------------------------------

    def run(self) -> RunFinished:
        self._started = time.perf_counter()
        try:
            # one writer per folder, and only its own run's checkpoint, checked before any expensive work
            self.folder.claim(self.request.resume_from)
        except (RunLocked, RunFolderError, CheckpointError) as error:
            return self._finish("failed", message=str(error), write_summary_file=False)
        except OSError as error:  # e.g. a read-only file system, or a file where a folder should be
            return self._finish("failed", message=describe_os_error(error, "cannot create the run folder"), write_summary_file=False)
        try:
            return self._run_claimed()
        finally:
            self.folder.close()

    def _run_claimed(self) -> RunFinished:
        try:
            setup = self._prepare()
        except (*EXPECTED_ERRORS, OSError) as error:
            # nothing is written yet, so the same run folder can be used once the cause is fixed
            self.folder.abandon()
            message = describe_os_error(error, "cannot read") if isinstance(error, OSError) else str(error)
            return self._finish("failed", message=message, write_summary_file=False)
        try:
            self._start_files()
        except OSError as error:  # e.g. metrics.jsonl replaced by a folder, a name too long for the file system
            return self._finish("failed", message=describe_os_error(error, "cannot write"), write_summary_file=False)
        if setup.layout_note is not None:
            self.emit(LogMessage("info", setup.layout_note))
        if self._data_note is not None:
            self.emit(LogMessage("warning", self._data_note))
        try:
            return self._train(setup)
        except EXPECTED_ERRORS as error:
            return self._finish("failed", message=str(error))
        except TrainingDiverged as error:
            return self._finish("failed", message=f"{error}; {self._what_is_kept()}")
        except OSError as error:  # a full disk or a file system that went away: the files on disk stay as they were
            try:
                return self._finish("failed", message=f"{describe_os_error(error, 'cannot write')}; {self._what_is_kept()}")
            except OSError:  # not even the summary can be written
                return self._finish("failed", message=describe_os_error(error, "cannot write"), write_summary_file=False)
        except KeyboardInterrupt:
            # a second Ctrl-C: no checkpoint now, but the last one can be resumed
            self._finish("stopped", message="aborted; resume continues from the last checkpoint")
            raise
        except BaseException as error:  # still record the failure, then let the caller see it
            self._finish("failed", message=f"{type(error).__name__}: {error}")
            raise

    def _start_files(self) -> None:
        """The run folder's marker, config, metrics log, panels and TensorBoard files, as the engine's first subscribers."""
        self.subscribers.insert(0, self.folder.start(config_to_toml(self.config), self.progress.step, self.progress.epochs_done))
        self.subscribers.insert(1, self.folder.panel_store())
        tensorboard = self.folder.start_tensorboard(self.config, self.progress.step)
        if tensorboard is not None:
            self.subscribers.insert(2, tensorboard)
            self._tensorboard = tensorboard

    def _what_is_kept(self) -> str:
        if self.paths.last_checkpoint.exists():
            return f"the last good checkpoint is kept ({self.paths.last_checkpoint})"
        return "no checkpoint had been saved yet"

    def _prepare(self) -> TrainingSetup:
        """Device, data, networks and (when resuming) their saved state: all before any file is written."""
        setup = prepare(self.config, self.request.data_dir)
        if self.request.resume_from is not None:
            checkpoint, self.progress = restore_from(self.request.resume_from, setup)
            try:
                self._pending = StepAccumulator.from_checkpoint(
                    checkpoint.tensors, checkpoint.metadata, self.config.train.log_every, setup.device
                )
            except PendingMetricsError as error:
                raise CheckpointError(f"{checkpoint.path}: {error}") from None
            self._thread_warning = thread_count_warning(checkpoint)
            self._check_best_checkpoint(setup, checkpoint)
            self._data_note = _data_changed_note(checkpoint, setup)
        return setup

    def _check_best_checkpoint(self, setup: TrainingSetup, resumed: Checkpoint) -> None:
        """`best` must hold the epoch the resumed state calls best, or the test figures would come from other weights."""
        best_epoch = self.progress.best_epoch
        if best_epoch is None:
            return
        found_epoch = best_file_epoch(self.paths.best_checkpoint)
        if found_epoch == best_epoch:
            return
        resumed_at_epoch_end = self.progress.epoch == self.progress.epochs_done
        if resumed_at_epoch_end and best_epoch == self.progress.epochs_done:
            # killed between the epoch's checkpoints: the resumed weights are that best epoch's
            self._save(setup, self.paths.best_checkpoint, "best (repaired on resume)")
            self.emit(LogMessage("warning", f"rewrote {self.paths.best_checkpoint} for best epoch {best_epoch}"))
            return
        raise CheckpointError(
            f"{self.paths.best_checkpoint}: holds epoch {found_epoch}, but {resumed.path} records epoch "
            f"{best_epoch} as best; the weights of epoch {best_epoch} are lost, so this run's test figures cannot be trusted"
        )

    # -- training ----------------------------------------------------------------------------

    def _train(self, setup: TrainingSetup) -> RunFinished:
        config, progress, method = self.config, self.progress, setup.method
        # a checkpoint saved inside an epoch continues that epoch's order where it left off
        resumed_mid_epoch = progress.epoch > progress.epochs_done
        self.emit(
            RunStarted(
                run_dir=str(self.paths.root),
                preset=config.name,
                method=config.method,
                device=str(setup.device),
                dataset=config.data.dataset,
                num_classes=setup.splits.num_classes,
                train_images=int(setup.splits.train_images.shape[0]),
                steps_per_epoch=setup.steps_per_epoch,
                epochs=config.train.epochs,
                start_epoch=progress.epochs_done + 1,
                start_step=progress.step,
                start_seconds=round(progress.elapsed, 3),
            )
        )
        if self.request.resume_from is not None:
            where = f"epoch {progress.epochs_done + 1}, step {progress.step}"
            self.emit(LogMessage("info", f"resumed from {self.request.resume_from} at {where}"))
            if self._thread_warning:
                self.emit(LogMessage("warning", self._thread_warning))
        generator_stream = setup.cursors["generator"].endless()
        for epoch in range(progress.epochs_done + 1, config.train.epochs + 1):
            if progress.patience_over(method.patience):
                self.emit(LogMessage("info", f"early stop: no better {self._selection_rule()} for {progress.epochs_without_improvement} epochs"))
                break
            progress.epoch = epoch
            epoch_started = time.perf_counter()
            batches = setup.cursors["train"].epoch(limit=setup.steps_per_epoch, continue_order=resumed_mid_epoch)
            resumed_mid_epoch = False
            if not self._train_epoch(setup, batches, lambda: next(generator_stream)):
                self._save(setup, self.paths.last_checkpoint, "stopped")
                return self._finish("stopped")
            self._end_epoch(setup, time.perf_counter() - epoch_started)
            if self.control.stop.is_set():
                return self._finish("stopped")
        return self._test(setup)

    def _train_epoch(self, setup: TrainingSetup, batches: Iterable[Batch], draw_batch: Callable[[], Batch]) -> bool:
        """Train the (rest of the) epoch; False if a stop was asked for before it ended."""
        accumulator, self._pending = self._pending or StepAccumulator(), None
        log_every, save_every = self.config.train.log_every, self.config.checkpoint.every_steps
        batch_size = setup.cursors["train"].batch_size
        interval_started = last_progress = time.perf_counter()
        for images, labels in batches:
            accumulator.add(setup.method.train_step(images, labels, draw_batch))
            self.progress.step += 1
            if time.perf_counter() - last_progress >= PROGRESS_SECONDS:  # a clock read, no device sync
                last_progress = time.perf_counter()
                self.emit(StepProgress(self.progress.epoch, self.progress.step))
            # reports fall on multiples of log_every, so a resumed run keeps the cadence
            if self.progress.step % log_every == 0:
                self._report(accumulator, batch_size, interval_started)
                interval_started = time.perf_counter()
            if save_every and self.progress.step % save_every == 0:
                self._report(accumulator, batch_size, interval_started)  # a checkpoint never holds a NaN
                self._save(setup, self.paths.last_checkpoint, "steps")
            if self.control.anything_asked():
                if not self.control.stop.is_set():
                    self._report(accumulator, batch_size, interval_started)
                    interval_started = time.perf_counter()
                if not self._answer_requests(setup):
                    # no partial step line: the stop checkpoint carries the figures on to the next report
                    self._pending = accumulator
                    return False
        self._report(accumulator, batch_size, interval_started)
        return True

    def _answer_requests(self, setup: TrainingSetup) -> bool:
        """Save, evaluate or pause as asked, at this step boundary; False if a stop was asked."""
        control = self.control
        self._save_or_evaluate_if_asked(setup)
        if control.pause.is_set() and not control.stop.is_set():
            self._paused_at = time.perf_counter()
            self.emit(PauseChanged(True, self.progress.step))
            while control.pause.is_set() and not control.stop.is_set():
                control.stop.wait(0.05)
                self._save_or_evaluate_if_asked(setup)  # both still work while paused
            self._started += time.perf_counter() - self._paused_at
            self._paused_at = None
            self.emit(PauseChanged(False, self.progress.step))
        return not control.stop.is_set()

    def _save_or_evaluate_if_asked(self, setup: TrainingSetup) -> None:
        control, progress = self.control, self.progress
        if control.save_now.is_set():
            control.save_now.clear()
            self._save(setup, self.paths.last_checkpoint, "asked")
        if control.evaluate_now.is_set():
            control.evaluate_now.clear()
            figures = self._evaluate(setup, setup.splits.val_images, setup.splits.val_labels)
            self.emit(
                EvaluationDone(
                    progress.epoch, progress.step, figures.acc_clean, figures.acc_adv, figures.acc_fgm_l2, figures.pert_l2, figures.acc_pgd
                )
            )

    def _report(self, accumulator: StepAccumulator, batch_size: int, interval_started: float) -> None:
        steps, timed = accumulator.steps, accumulator.steps - accumulator.carried
        if steps == 0:
            return
        means = accumulator.read()
        bad = [name for name, value in means.items() if not math.isfinite(value)]
        if bad:
            raise TrainingDiverged(f"{bad[0]} became {means[bad[0]]} by epoch {self.progress.epoch}, step {self.progress.step}")
        seconds = max(time.perf_counter() - interval_started, 1e-9)
        self.emit(
            StepMetrics(
                epoch=self.progress.epoch,
                step=self.progress.step,
                time=round(self.elapsed(), 3),
                images_per_second=timed * batch_size / seconds,
                **{name: means.get(name) for name in STEP_FIGURES},
            )
        )

    def _end_epoch(self, setup: TrainingSetup, train_seconds: float) -> None:
        """Validate, record the epoch and its preview panel, then checkpoint it: `best` and the
        epoch copy before `last`.

        The panel comes before the checkpoints, so what the subscribers keep of it (panels/, the
        TensorBoard images) is written by the time `last` covers the epoch: a resume never redoes
        that epoch, so a panel emitted after `last` would be lost to a kill right after it. The
        panel draws from a forked random stream, so it leaves the saved state as it was.
        `last` is written last, so a kill anywhere in between resumes from the previous epoch's
        `last` and redoes this epoch, rewriting `best`, the copy and the panel; `best` never lags
        behind the epoch that `last` calls best.
        """
        progress, method = self.progress, setup.method
        figures = self._evaluate(setup, setup.splits.val_images, setup.splits.val_labels)
        metric = self._selection_rule()
        value = figures.figure(metric)
        if value is None or not math.isfinite(value):
            raise TrainingDiverged(f"validation {metric} became {value} in epoch {progress.epoch}")
        better = progress.record_epoch(value, method.selection_lower_is_better)
        self.emit(figures.epoch_summary(progress.epoch, progress.step, round(self.elapsed(), 3), better, train_seconds))
        warning = self.generator_watch.observe(figures.pert_l2)
        if warning is not None:
            self.emit(LogMessage("warning", warning))
        panel_size = min(self.config.eval.panel_size, int(setup.splits.val_images.shape[0]))
        if panel_size:
            with torch.random.fork_rng(devices=setup.rng_devices()):
                panel = preview_panel(
                    method,
                    setup.splits.val_images[:panel_size],
                    setup.splits.val_labels[:panel_size],
                    progress.epoch,
                    list(setup.splits.class_names),
                    setup.channels_last,
                )
            self.emit(panel)
        if better:
            self._save(setup, self.paths.best_checkpoint, "best")
        if self.config.checkpoint.keep_epochs:
            self._save(setup, self.paths.checkpoints / f"epoch-{progress.epoch:03d}.safetensors", "epoch copy")
        self._save(setup, self.paths.last_checkpoint, "epoch")
        self._warn_once_if_tensorboard_stopped()

    def _warn_once_if_tensorboard_stopped(self) -> None:
        # the writer fails in its own thread, where nothing can reach the user; the checkpoint's
        # flush has just waited for it, so a failure before the checkpoint is known here
        if self._tensorboard is None:
            return
        failure = self._tensorboard.failure()
        if failure is not None:
            self._tensorboard = None
            self.emit(LogMessage("warning", failure))

    def _selection_rule(self) -> str:
        """The validation figure that picks the best checkpoint: the GAT attacker's own (L_G), else
        `train.select_best_by`; from the config alone, so the summary of a run that failed early has it too."""
        if self.config.method == "gat_attack":
            return GatAttackerTraining.selection_metric
        return self.config.train.select_best_by

    def _pgd_budget(self) -> PgdBudget | None:
        """The validation PGD figure's attack when it is on ([eval] pgd, or selection by it), else None."""
        config = self.config
        if config.eval.pgd or config.train.select_best_by == "val_acc_pgd":
            return PgdBudget.from_config(config.eval)
        return None

    def _evaluate(self, setup: TrainingSetup, images: torch.Tensor, labels: torch.Tensor) -> SplitFigures:
        # evaluation draws its random numbers from a forked stream: training's stream, and so
        # the trained weights, do not depend on how often or whether we evaluate
        with torch.random.fork_rng(devices=setup.rng_devices()):
            torch.manual_seed(self.config.seed)
            return evaluate_split(
                setup.method,
                images,
                labels,
                self.config.data.eval_batch_size,
                self.config.eval.fgm_l2_eps,
                self.config.perturbation.clip,
                setup.channels_last,
                self._pgd_budget(),
            )

    def _save(self, setup: TrainingSetup, path: Path, reason: str) -> None:
        self.progress.elapsed = self.elapsed()
        self._started = self._now()
        checkpointing.save(path, setup, self.progress, config_to_toml(self.config), self.folder.run_id, self._pending)
        self.emit(CheckpointSaved(str(path), self.progress.epoch, self.progress.step, reason))

    # -- the end -----------------------------------------------------------------------------

    def _test(self, setup: TrainingSetup) -> RunFinished:
        """Test figures of the networks that were best on validation."""
        best = Checkpoint.open(self.paths.best_checkpoint)
        for name, network in setup.method.networks().items():
            best.load_into(name, network)
        figures = self._evaluate(setup, setup.splits.test_images, setup.splits.test_labels)
        return self._finish(
            "finished",
            test_acc_clean=figures.acc_clean,
            test_acc_adv=figures.acc_adv,
            test_acc_fgm_l2=figures.acc_fgm_l2,
            extra={"test_pert_l2": figures.pert_l2, "test_pert_linf": figures.pert_linf, "test_acc_pgd": figures.acc_pgd},
        )

    def _finish(
        self,
        status: str,
        message: str = "",
        extra: dict[str, float | None] | None = None,
        write_summary_file: bool = True,
        **test_figures: float | None,
    ) -> RunFinished:
        progress = self.progress
        finished = RunFinished(
            status=status,
            epochs_done=progress.epochs_done,
            step=progress.step,
            wall_seconds=round(self.elapsed(), 3),
            best_epoch=progress.best_epoch,
            best_value=progress.best_value,
            message=message,
            extra={key: value for key, value in (extra or {}).items() if value is not None},
            **test_figures,
        )
        if status == "failed":
            self.emit(LogMessage("error", finished.message))
        if write_summary_file and status == "failed" and _finished_before(self.paths.root):
            # a finished run's test figures are never replaced by a later attempt's failure
            self.emit(LogMessage("warning", f"{self.paths.summary} keeps the finished run's figures"))
            write_summary_file = False
        if write_summary_file:
            write_summary(
                self.paths.summary,
                finished,
                {"preset": self.config.name, "method": self.config.method, "run_dir": str(self.paths.root),
                 "torch_threads": torch.get_num_threads(), "select_best_by": self._selection_rule()},
            )
        self.emit(finished)
        return finished


def _finished_before(run_dir: Path) -> bool:
    summary = read_summary(run_dir)  # not `finished_summary`: this process holds the folder's lock
    return summary is not None and summary["status"] == "finished"


def _data_changed_note(checkpoint: Checkpoint, setup: TrainingSetup) -> str | None:
    """A warning when the data loaded now is not the data the checkpoint was trained on (files added, removed, edited)."""
    saved = checkpoint.metadata.get(checkpointing.DATA_FINGERPRINT_KEY)
    if saved is None or saved == setup.data_fingerprint:  # a checkpoint from before fingerprints: nothing to compare
        return None
    return (
        f"the data differs from the data {checkpoint.path.name} was trained on (SHA-256 {saved[:12]}, now "
        f"{setup.data_fingerprint[:12]}): files were added, removed or changed; the run goes on with the data as it is now, "
        "so it no longer reproduces an uninterrupted run"
    )
