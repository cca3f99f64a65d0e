"""The training engine: epochs of a method's steps, validation, checkpoints, events.

It knows nothing of any user interface: it emits `gat_tui.events` to its subscribers and
stops cleanly when its `stop` event is set (Ctrl-C or SIGTERM in the headless runner, a key in
the dashboard), saving a checkpoint first. A run resumed from a checkpoint continues with the
same weights, optimiser moments, random streams and data order, so on the CPU it ends
bit-identical to the same run left alone.

Host syncs happen only at report time: step figures are summed on the device and read back
every `train.log_every` steps, validation once per epoch.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from gat_tui.atomic import write_text_atomically
from gat_tui.checkpoints import CheckpointError, NetworkShape, load_network_weights, read_checkpoint, save_checkpoint
from gat_tui.config import RunConfig, config_to_toml
from gat_tui.data import DataError, ImageSplits, load_splits
from gat_tui.device import DeviceError, configure_backends, prefers_channels_last, select_device
from gat_tui.events import (
    CheckpointSaved,
    EpochSummary,
    EvaluationDone,
    Event,
    LogMessage,
    PauseChanged,
    RunFinished,
    RunStarted,
    StepMetrics,
    Subscriber,
)
from gat_tui.methods import MethodSetupError, TrainingMethod, build_method
from gat_tui.runs.folder import MetricsLog, RunPaths, truncate_metrics, write_summary
from gat_tui.training.batches import ShuffledBatches
from gat_tui.training.control import TrainingControl
from gat_tui.training.state import Progress, StateError, capture, restore
from gat_tui.training.step_metrics import StepAccumulator
from gat_tui.training.validation import SplitFigures, evaluate_split, preview_panel

# errors that end a run with a message rather than a traceback
EXPECTED_ERRORS = (DataError, DeviceError, CheckpointError, MethodSetupError, StateError)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite."""


@dataclass
class _Setup:
    """What `_prepare` builds and the training loop uses."""

    device: torch.device
    splits: ImageSplits
    method: TrainingMethod
    shape: NetworkShape
    channels_last: bool
    cursors: dict[str, ShuffledBatches]
    steps_per_epoch: int


class Trainer:
    """Runs one configured training into a run folder; `run()` returns how it ended."""

    def __init__(
        self,
        config: RunConfig,
        run_dir: Path,
        subscribers: Iterable[Subscriber] = (),
        stop: threading.Event | None = None,
        data_dir: Path | None = None,
        resume_from: Path | None = None,
        control: TrainingControl | None = None,
    ) -> None:
        self.config = config
        self.paths = RunPaths(run_dir)
        self.subscribers = list(subscribers)
        self.control = control or TrainingControl(stop=stop or threading.Event())
        self.stop = self.control.stop
        self.data_dir = data_dir
        self.resume_from = resume_from
        self.progress = Progress()
        self._started = time.perf_counter()

    def emit(self, event: Event) -> None:
        for subscriber in self.subscribers:
            subscriber(event)

    def elapsed(self) -> float:
        return self.progress.elapsed + time.perf_counter() - self._started

    # -- setup -------------------------------------------------------------------------------

    def run(self) -> RunFinished:
        self._started = time.perf_counter()
        try:
            setup = self._prepare()
        except EXPECTED_ERRORS as error:
            # nothing is written yet, so the same run folder can be used once the cause is fixed
            return self._finish("failed", message=str(error), write_summary_file=False)
        self.paths.root.mkdir(parents=True, exist_ok=True)
        write_text_atomically(self.paths.config, config_to_toml(self.config))
        if self.resume_from is not None:
            # lines written after the checkpoint would otherwise appear twice
            truncate_metrics(self.paths.metrics, self.progress.step, self.progress.epochs_done)
        self.paths.pid.write_text(str(os.getpid()))
        metrics_log = MetricsLog(self.paths.metrics)
        self.subscribers.insert(0, metrics_log)
        try:
            finished = self._train(setup)
        except EXPECTED_ERRORS as error:
            finished = self._finish("failed", message=str(error))
        except TrainingDiverged as error:
            finished = self._finish("failed", message=f"{error}; the last good checkpoint is kept")
        except BaseException as error:  # still record the failure, then let the caller see it
            self._finish("failed", message=f"{type(error).__name__}: {error}")
            raise
        finally:
            metrics_log.close()
            self.paths.pid.unlink(missing_ok=True)
        return finished

    def _prepare(self) -> _Setup:
        """Device, data, networks and (when resuming) their saved state: all before any file is written."""
        config = self.config
        device = select_device(config.device)
        configure_backends(device)
        torch.manual_seed(config.seed)
        splits = load_splits(config.data, self.data_dir).to(device)
        channels_last = prefers_channels_last(device)
        method = build_method(config, splits.num_classes, splits.image_shape[0], device)
        if channels_last:
            for network in method.networks().values():
                network.to(memory_format=torch.channels_last)
        method.train()
        cursors = {
            "train": ShuffledBatches(
                splits.train_images, splits.train_labels, config.data.batch_size, config.seed, channels_last
            ),
            # GAT's generator steps take fresh minibatches from an independent shuffle (Algorithm 1)
            "generator": ShuffledBatches(
                splits.train_images, splits.train_labels, config.data.batch_size, config.seed + 1, channels_last
            ),
        }
        steps_per_epoch = cursors["train"].batches_per_epoch
        if config.train.max_steps_per_epoch:
            steps_per_epoch = min(steps_per_epoch, config.train.max_steps_per_epoch)
        dropout = float(getattr(method.classifier, "dropout_rate", 0.0))
        setup = _Setup(
            device=device,
            splits=splits,
            method=method,
            shape=NetworkShape(splits.num_classes, *splits.image_shape, dropout=dropout),
            channels_last=channels_last,
            cursors=cursors,
            steps_per_epoch=steps_per_epoch,
        )
        if self.resume_from is not None:
            self._restore(setup, self.resume_from)
        return setup

    def _restore(self, setup: _Setup, path: Path) -> None:
        tensors, metadata = read_checkpoint(path)
        for name, network in setup.method.networks().items():
            load_network_weights(path, name, network, tensors)
        try:
            self.progress = restore(tensors, metadata, setup.method, setup.cursors, setup.device)
        except StateError as error:
            raise CheckpointError(f"{path}: {error}") from None
        except (KeyError, ValueError, RuntimeError) as error:
            raise CheckpointError(f"{path}: training state does not fit this run ({error})") from None

    # -- training ----------------------------------------------------------------------------

    def _train(self, setup: _Setup) -> RunFinished:
        config, progress = self.config, self.progress
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
            )
        )
        if self.resume_from is not None:
            self.emit(LogMessage("info", f"resumed from {self.resume_from} at epoch {progress.epochs_done + 1}, step {progress.step}"))
        generator_stream = setup.cursors["generator"].endless()
        for epoch in range(progress.epochs_done + 1, config.train.epochs + 1):
            if self._early_stop_due():
                break
            progress.epoch = epoch
            epoch_started = time.perf_counter()
            batches = setup.cursors["train"].epoch(limit=setup.steps_per_epoch, continue_order=resumed_mid_epoch)
            resumed_mid_epoch = False
            if not self._train_epoch(setup, batches, lambda: next(generator_stream)):
                self._save(setup, self.paths.last_checkpoint, "stopped")
                return self._finish("stopped")
            self._end_epoch(setup, time.perf_counter() - epoch_started)
            if self.stop.is_set():
                return self._finish("stopped")
        return self._test(setup)

    def _early_stop_due(self) -> bool:
        patience_over = self.progress.epochs_without_improvement >= self.config.attack.patience
        if self.config.method == "gat_attack" and patience_over:
            self.emit(LogMessage("info", f"early stop: no better validation loss for {self.progress.epochs_without_improvement} epochs"))
            return True
        return False

    def _train_epoch(self, setup: _Setup, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], draw_batch) -> bool:  # type: ignore[no-untyped-def]
        """Train the (rest of the) epoch; False if a stop was asked for before it ended."""
        accumulator = StepAccumulator()
        log_every, save_every = self.config.train.log_every, self.config.checkpoint.every_steps
        batch_size = setup.cursors["train"].batch_size
        interval_started = time.perf_counter()
        for images, labels in batches:
            accumulator.add(setup.method.train_step(images, labels, draw_batch))
            self.progress.step += 1
            # reports fall on multiples of log_every, so a resumed run keeps the cadence
            if self.progress.step % log_every == 0:
                self._report(accumulator, batch_size, interval_started)
                interval_started = time.perf_counter()
            if save_every and self.progress.step % save_every == 0:
                self._report(accumulator, batch_size, interval_started)  # a checkpoint never holds a NaN
                self._save(setup, self.paths.last_checkpoint, "steps")
            if self.control.anything_asked():
                self._report(accumulator, batch_size, interval_started)
                interval_started = time.perf_counter()
                if not self._answer_requests(setup):
                    return False
        self._report(accumulator, batch_size, interval_started)
        return True

    def _answer_requests(self, setup: _Setup) -> bool:
        """Save, evaluate or pause as asked, at this step boundary; False if a stop was asked."""
        control = self.control
        self._save_or_evaluate_if_asked(setup)
        if control.pause.is_set() and not control.stop.is_set():
            self.emit(PauseChanged(True, self.progress.step))
            while control.pause.is_set() and not control.stop.is_set():
                control.stop.wait(0.05)
                self._save_or_evaluate_if_asked(setup)  # both still work while paused
            self.emit(PauseChanged(False, self.progress.step))
        return not control.stop.is_set()

    def _save_or_evaluate_if_asked(self, setup: _Setup) -> None:
        control = self.control
        if control.save_now.is_set():
            control.save_now.clear()
            self._save(setup, self.paths.last_checkpoint, "asked")
        if control.evaluate_now.is_set():
            control.evaluate_now.clear()
            figures = self._evaluate(setup, setup.splits.val_images, setup.splits.val_labels)
            self.emit(
                EvaluationDone(
                    self.progress.epoch, self.progress.step, figures.acc_clean, figures.acc_adv, figures.acc_fgm_l2, figures.pert_l2
                )
            )

    def _report(self, accumulator: StepAccumulator, batch_size: int, interval_started: float) -> None:
        steps = accumulator.steps
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
                loss_f=means.get("loss_f"),
                loss_g=means.get("loss_g"),
                pert_l2=means.get("pert_l2"),
                pert_linf=means.get("pert_linf"),
                images_per_second=steps * batch_size / seconds,
                train_acc_clean=means.get("train_acc_clean"),
                train_acc_adv=means.get("train_acc_adv"),
            )
        )

    def _end_epoch(self, setup: _Setup, train_seconds: float) -> None:
        """Validate, then record the epoch and only then checkpoint it, so a crash in between redoes it."""
        progress, method = self.progress, setup.method
        figures = self._evaluate(setup, setup.splits.val_images, setup.splits.val_labels)
        value = figures.loss_g if method.selection_metric == "val_loss_g" else figures.acc_clean
        if value is None or not math.isfinite(value):
            raise TrainingDiverged(f"validation {method.selection_metric} became {value} in epoch {progress.epoch}")
        better = progress.best_value is None or (
            value < progress.best_value if method.selection_lower_is_better else value > progress.best_value
        )
        progress.epochs_done = progress.epoch
        if better:
            progress.best_value, progress.best_epoch, progress.epochs_without_improvement = value, progress.epoch, 0
        else:
            progress.epochs_without_improvement += 1
        self.emit(self._epoch_summary(figures, better, train_seconds))
        self._save(setup, self.paths.last_checkpoint, "epoch")
        if better:
            self._save(setup, self.paths.best_checkpoint, "best")
        if self.config.checkpoint.keep_epochs:
            self._save(setup, self.paths.checkpoints / f"epoch-{progress.epoch:03d}.safetensors", "epoch copy")
        panel_size = min(self.config.eval.panel_size, int(setup.splits.val_images.shape[0]))
        if panel_size:
            with torch.random.fork_rng(devices=self._rng_devices(setup)):
                self.emit(
                    preview_panel(
                        method,
                        setup.splits.val_images[:panel_size],
                        setup.splits.val_labels[:panel_size],
                        progress.epoch,
                        list(setup.splits.class_names),
                        setup.channels_last,
                    )
                )

    @staticmethod
    def _rng_devices(setup: _Setup) -> list[torch.device]:
        return [setup.device] if setup.device.type == "cuda" else []

    def _evaluate(self, setup: _Setup, images: torch.Tensor, labels: torch.Tensor) -> SplitFigures:
        # evaluation draws its random numbers from a forked stream: training's stream, and so
        # the trained weights, do not depend on how often or whether we evaluate
        with torch.random.fork_rng(devices=self._rng_devices(setup)):
            torch.manual_seed(self.config.seed)
            return evaluate_split(
                setup.method,
                images,
                labels,
                self.config.data.eval_batch_size,
                self.config.eval.fgm_l2_eps,
                self.config.perturbation.clip,
                setup.channels_last,
            )

    def _epoch_summary(self, figures: SplitFigures, is_best: bool, seconds: float) -> EpochSummary:
        return EpochSummary(
            epoch=self.progress.epoch,
            step=self.progress.step,
            time=round(self.elapsed(), 3),
            val_acc_clean=figures.acc_clean,
            val_acc_adv=figures.acc_adv,
            val_acc_fgm_l2=figures.acc_fgm_l2,
            val_pert_l2=figures.pert_l2,
            val_pert_linf=figures.pert_linf,
            val_loss_g=figures.loss_g,
            is_best=is_best,
            epoch_seconds=seconds,
        )

    def _save(self, setup: _Setup, path: Path, reason: str) -> None:
        self.progress.elapsed = self.elapsed()
        self._started = time.perf_counter()
        state_tensors, state_metadata = capture(setup.method, setup.cursors, self.progress, setup.device)
        save_checkpoint(
            path,
            setup.method.networks(),
            setup.shape,
            config_to_toml(self.config),
            self.progress.epoch,
            self.progress.step,
            extra_tensors=state_tensors,
            extra_metadata=state_metadata,
        )
        self.emit(CheckpointSaved(str(path), self.progress.epoch, self.progress.step, reason))

    # -- the end -----------------------------------------------------------------------------

    def _test(self, setup: _Setup) -> RunFinished:
        """Test figures of the networks that were best on validation."""
        tensors, _ = read_checkpoint(self.paths.best_checkpoint)
        for name, network in setup.method.networks().items():
            load_network_weights(self.paths.best_checkpoint, name, network, tensors)
        figures = self._evaluate(setup, setup.splits.test_images, setup.splits.test_labels)
        return self._finish(
            "finished",
            test_acc_clean=figures.acc_clean,
            test_acc_adv=figures.acc_adv,
            test_acc_fgm_l2=figures.acc_fgm_l2,
            extra={"test_pert_l2": figures.pert_l2, "test_pert_linf": figures.pert_linf},
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
        if write_summary_file:
            write_summary(
                self.paths.summary,
                finished,
                {"preset": self.config.name, "method": self.config.method, "run_dir": str(self.paths.root)},
            )
        self.emit(finished)
        return finished
