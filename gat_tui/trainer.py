"""The training engine: epochs of a method's steps, validation, checkpoints, events.

It knows nothing of any user interface: it emits `gat_tui.events` to its subscribers and
stops cleanly when its `stop` event is set (Ctrl-C in the headless runner, a key in the
dashboard), saving a checkpoint first.

Host syncs happen only at report time: step figures are summed on the device and read back
every `train.log_every` steps, validation once per epoch.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import torch

from gat_tui.batches import ShuffledBatches
from gat_tui.checkpoints import CheckpointError, NetworkShape, save_checkpoint
from gat_tui.config import RunConfig, config_to_toml
from gat_tui.data import DataError, ImageSplits, load_splits
from gat_tui.device import DeviceError, configure_backends, prefers_channels_last, select_device
from gat_tui.evaluation import SplitFigures, evaluate_split, preview_panel
from gat_tui.events import (
    CheckpointSaved,
    EpochSummary,
    Event,
    LogMessage,
    RunFinished,
    RunStarted,
    StepMetrics,
    Subscriber,
)
from gat_tui.methods import DrawBatch, MethodSetupError, StepResult, TrainingMethod, build_method
from gat_tui.run_folder import MetricsLog, RunPaths, write_summary

# errors that end a run with a message rather than a traceback
EXPECTED_ERRORS = (DataError, DeviceError, CheckpointError, MethodSetupError)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite."""


@dataclass
class _StepAccumulator:
    """Sums of step figures on the device; `read` is the only place they reach the host."""

    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    steps: int = 0

    def add(self, result: StepResult) -> None:
        for name in ("loss_f", "loss_g", "pert_l2", "pert_linf"):
            value = getattr(result, name)
            if value is not None:
                self.sums[name] = self.sums[name] + value if name in self.sums else value.clone()
        self.steps += 1

    def read(self) -> dict[str, float]:
        names = list(self.sums)
        values = torch.stack([self.sums[name] for name in names]).tolist() if names else []  # a host sync
        means = {name: value / self.steps for name, value in zip(names, values)}
        self.sums, self.steps = {}, 0
        return means


@dataclass
class _Setup:
    """What `_prepare` builds and the training loop uses."""

    device: torch.device
    splits: ImageSplits
    method: TrainingMethod
    shape: NetworkShape
    channels_last: bool
    train_batches: ShuffledBatches
    generator_batches: ShuffledBatches
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
    ) -> None:
        self.config = config
        self.paths = RunPaths(run_dir)
        self.subscribers = list(subscribers)
        self.stop = stop or threading.Event()
        self.data_dir = data_dir
        self.epoch = 0  # the epoch in progress, from 1
        self.epochs_done = 0
        self.step = 0  # classifier steps completed (generator steps for gat_attack)
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self._started = time.perf_counter()

    def emit(self, event: Event) -> None:
        for subscriber in self.subscribers:
            subscriber(event)

    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    def run(self) -> RunFinished:
        self._started = time.perf_counter()
        try:
            setup = self._prepare()
        except EXPECTED_ERRORS as error:
            # nothing is written yet, so the same run folder can be used once the cause is fixed
            return self._finish("failed", message=str(error), write_summary_file=False)
        self.paths.root.mkdir(parents=True, exist_ok=True)
        self.paths.config.write_text(config_to_toml(self.config), encoding="utf-8")
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
        return finished

    def _prepare(self) -> _Setup:
        """Device, data and networks: everything that can fail before a file is written."""
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
        dropout = float(getattr(method.classifier, "dropout_rate", 0.0))
        train_batches = ShuffledBatches(
            splits.train_images, splits.train_labels, config.data.batch_size, config.seed, channels_last
        )
        # GAT's generator steps take fresh minibatches from an independent shuffle (Algorithm 1)
        generator_batches = ShuffledBatches(
            splits.train_images, splits.train_labels, config.data.batch_size, config.seed + 1, channels_last
        )
        steps_per_epoch = train_batches.batches_per_epoch
        if config.train.max_steps_per_epoch:
            steps_per_epoch = min(steps_per_epoch, config.train.max_steps_per_epoch)
        return _Setup(
            device=device,
            splits=splits,
            method=method,
            shape=NetworkShape(splits.num_classes, *splits.image_shape, dropout=dropout),
            channels_last=channels_last,
            train_batches=train_batches,
            generator_batches=generator_batches,
            steps_per_epoch=steps_per_epoch,
        )

    def _train(self, setup: _Setup) -> RunFinished:
        config = self.config
        splits, method, shape, channels_last = setup.splits, setup.method, setup.shape, setup.channels_last
        train_batches, steps_per_epoch = setup.train_batches, setup.steps_per_epoch
        generator_stream = setup.generator_batches.endless()
        self.emit(
            RunStarted(
                run_dir=str(self.paths.root),
                preset=config.name,
                method=config.method,
                device=str(setup.device),
                dataset=config.data.dataset,
                num_classes=splits.num_classes,
                train_images=int(splits.train_images.shape[0]),
                steps_per_epoch=steps_per_epoch,
                epochs=config.train.epochs,
            )
        )
        panel_size = min(config.eval.panel_size, int(splits.val_images.shape[0]))
        epochs_without_improvement = 0
        for epoch in range(1, config.train.epochs + 1):
            self.epoch = epoch
            epoch_started = time.perf_counter()
            completed = self._train_epoch(method, train_batches, lambda: next(generator_stream), steps_per_epoch)
            if not completed:
                self._save(method, shape, self.paths.last_checkpoint, "stopped")
                return self._finish("stopped")
            figures = self._validate(method, splits, channels_last)
            self.epochs_done = epoch
            improved = self._is_improvement(method, figures)
            self._save(method, shape, self.paths.last_checkpoint, "epoch")
            if improved:
                self.best_value, self.best_epoch = self._selection_value(method, figures), epoch
                self._save(method, shape, self.paths.best_checkpoint, "best")
                epochs_without_improvement = 0
            else:
                epochs_without_improvement += 1
            self.emit(self._epoch_summary(figures, improved, time.perf_counter() - epoch_started))
            if panel_size:
                self.emit(
                    preview_panel(
                        method,
                        splits.val_images[:panel_size],
                        splits.val_labels[:panel_size],
                        epoch,
                        list(splits.class_names),
                        channels_last,
                    )
                )
            if config.method == "gat_attack" and epochs_without_improvement >= config.attack.patience:
                self.emit(LogMessage("info", f"early stop: no better validation loss for {epochs_without_improvement} epochs"))
                break
            if self.stop.is_set():
                return self._finish("stopped")
        return self._test(method, splits, channels_last)

    def _train_epoch(
        self, method: TrainingMethod, batches: ShuffledBatches, draw_batch: DrawBatch, steps: int
    ) -> bool:
        """Train one epoch; False if a stop was asked for before it ended."""
        accumulator = _StepAccumulator()
        log_every = self.config.train.log_every
        images_per_step = batches.batch_size
        interval_started = time.perf_counter()
        for images, labels in batches.epoch(limit=steps):
            if self.stop.is_set():
                if accumulator.steps:
                    self._report(accumulator, images_per_step, interval_started)
                return False
            accumulator.add(method.train_step(images, labels, draw_batch))
            self.step += 1
            if accumulator.steps >= log_every:
                self._report(accumulator, images_per_step, interval_started)
                interval_started = time.perf_counter()
        if accumulator.steps:
            self._report(accumulator, images_per_step, interval_started)
        return True

    def _report(self, accumulator: _StepAccumulator, images_per_step: int, interval_started: float) -> None:
        steps = accumulator.steps
        means = accumulator.read()
        bad = [name for name, value in means.items() if not math.isfinite(value)]
        if bad:
            raise TrainingDiverged(
                f"{bad[0]} became {means[bad[0]]} by epoch {self.epoch}, step {self.step}"
            )
        seconds = max(time.perf_counter() - interval_started, 1e-9)
        self.emit(
            StepMetrics(
                epoch=self.epoch,
                step=self.step,
                time=round(self.elapsed(), 3),
                loss_f=means.get("loss_f"),
                loss_g=means.get("loss_g"),
                pert_l2=means.get("pert_l2"),
                pert_linf=means.get("pert_linf"),
                images_per_second=steps * images_per_step / seconds,
            )
        )

    def _validate(self, method: TrainingMethod, splits: ImageSplits, channels_last: bool) -> SplitFigures:
        data = self.config.data
        return evaluate_split(
            method,
            splits.val_images,
            splits.val_labels,
            data.eval_batch_size,
            self.config.eval.fgm_l2_eps,
            self.config.perturbation.clip,
            channels_last,
        )

    @staticmethod
    def _selection_value(method: TrainingMethod, figures: SplitFigures) -> float:
        value = figures.loss_g if method.selection_metric == "val_loss_g" else figures.acc_clean
        assert value is not None, f"{method.selection_metric} was not measured"
        return value

    def _is_improvement(self, method: TrainingMethod, figures: SplitFigures) -> bool:
        value = self._selection_value(method, figures)
        if not math.isfinite(value):
            raise TrainingDiverged(f"validation {method.selection_metric} became {value} in epoch {self.epoch}")
        if self.best_value is None:
            return True
        return value < self.best_value if method.selection_lower_is_better else value > self.best_value

    def _epoch_summary(self, figures: SplitFigures, is_best: bool, seconds: float) -> EpochSummary:
        return EpochSummary(
            epoch=self.epoch,
            step=self.step,
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

    def _save(self, method: TrainingMethod, shape: NetworkShape, path: Path, reason: str) -> None:
        save_checkpoint(path, method.networks(), shape, config_to_toml(self.config), self.epoch, self.step)
        self.emit(CheckpointSaved(str(path), self.epoch, self.step, reason))

    def _test(self, method: TrainingMethod, splits: ImageSplits, channels_last: bool) -> RunFinished:
        """Test figures of the networks that were best on validation."""
        from gat_tui.checkpoints import load_network_weights, read_checkpoint

        tensors, _ = read_checkpoint(self.paths.best_checkpoint)
        for name, network in method.networks().items():
            load_network_weights(self.paths.best_checkpoint, name, network, tensors)
        figures = evaluate_split(
            method,
            splits.test_images,
            splits.test_labels,
            self.config.data.eval_batch_size,
            self.config.eval.fgm_l2_eps,
            self.config.perturbation.clip,
            channels_last,
        )
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
        finished = RunFinished(
            status=status,
            epochs_done=self.epochs_done,
            step=self.step,
            wall_seconds=round(self.elapsed(), 3),
            best_epoch=self.best_epoch,
            best_value=self.best_value,
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
