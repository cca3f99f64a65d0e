"""Events the engine emits; the headless printer, the metrics log and the dashboard subscribe.

Each is a small frozen dataclass of plain Python numbers and strings (images as numpy
arrays), so subscribers never touch torch tensors or the device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np


@dataclass(frozen=True)
class RunStarted:
    """Training is about to begin."""

    run_dir: str
    preset: str
    method: str
    device: str
    dataset: str
    num_classes: int
    train_images: int
    steps_per_epoch: int
    epochs: int
    start_epoch: int = 1
    start_step: int = 0
    start_seconds: float = 0.0  # seconds of training before this session (a resumed run's), pauses left out


@dataclass(frozen=True)
class StepMetrics:
    """Means over the steps since the last report (`train.log_every` steps)."""

    epoch: int
    step: int
    time: float
    loss_f: float | None
    loss_g: float | None
    pert_l2: float | None
    pert_linf: float | None
    images_per_second: float
    train_acc_clean: float | None = None
    train_acc_adv: float | None = None


# the training figures of a step, named here once: methods return them (`StepResult`), the
# engine averages them, the metrics log, the printer and the dashboard read them by these names
_STEP_CONTEXT = ("epoch", "step", "time", "images_per_second")
STEP_FIGURES: tuple[str, ...] = tuple(f.name for f in fields(StepMetrics) if f.name not in _STEP_CONTEXT)


@dataclass(frozen=True)
class EpochSummary:
    """Validation figures after an epoch; accuracies in [0, 1], norms in pixel units."""

    epoch: int
    step: int
    time: float
    val_acc_clean: float
    val_acc_adv: float | None
    val_acc_fgm_l2: float
    val_pert_l2: float | None
    val_pert_linf: float | None
    val_loss_g: float | None
    is_best: bool
    epoch_seconds: float
    val_acc_pgd: float | None = None  # under the validation PGD of [eval]; None when it is off


_EPOCH_CONTEXT = ("epoch", "step", "time", "is_best", "epoch_seconds")
EPOCH_FIGURES: tuple[str, ...] = tuple(f.name for f in fields(EpochSummary) if f.name not in _EPOCH_CONTEXT)

# short names for charts and tables
FIGURE_LABELS: dict[str, str] = {
    "loss_f": "L_F",
    "loss_g": "L_G",
    "pert_l2": "‖δ‖₂",
    "pert_linf": "‖δ‖∞",
    "train_acc_clean": "train clean",
    "train_acc_adv": "train adv",
    "val_acc_clean": "val clean",
    "val_acc_adv": "val adv",
    "val_acc_fgm_l2": "val FGM-L2",
    "val_acc_pgd": "val PGD",
    "val_pert_l2": "val ‖δ‖₂",
    "val_pert_linf": "val ‖δ‖∞",
    "val_loss_g": "val L_G",
}


@dataclass(frozen=True)
class PreviewPanel:
    """The fixed validation images with the method's perturbation, as float32 [N, C, H, W] in [0, 1].

    `perturbations` holds the raw signed perturbation; previews rescale it to be visible.
    """

    epoch: int
    images: np.ndarray
    perturbations: np.ndarray
    adversarial: np.ndarray
    labels: list[int]
    predicted_clean: list[int]
    predicted_adversarial: list[int]
    class_names: list[str]


@dataclass(frozen=True)
class EvaluationDone:
    """An evaluation on the validation set asked for during training (not written to metrics)."""

    epoch: int
    step: int
    val_acc_clean: float
    val_acc_adv: float | None
    val_acc_fgm_l2: float
    val_pert_l2: float | None
    val_acc_pgd: float | None = None


@dataclass(frozen=True)
class StepProgress:
    """Training has reached `step`: sent at most every `PROGRESS_SECONDS`, between step reports, so a
    progress bar moves with every step; it carries no figures (reading them would sync the device)."""

    epoch: int
    step: int


PROGRESS_SECONDS = 0.1


@dataclass(frozen=True)
class PauseChanged:
    """Training paused (at a step boundary) or continued."""

    paused: bool
    step: int


@dataclass(frozen=True)
class LogMessage:
    """A line for the user: level is 'info', 'warning' or 'error'."""

    level: str
    text: str


@dataclass(frozen=True)
class CheckpointSaved:
    """A checkpoint file was written (atomically)."""

    path: str
    epoch: int
    step: int
    reason: str


@dataclass(frozen=True)
class RunFinished:
    """The run ended: status is 'finished', 'stopped' or 'failed'; test figures are None unless finished."""

    status: str
    epochs_done: int
    step: int
    wall_seconds: float
    best_epoch: int | None
    best_value: float | None
    test_acc_clean: float | None = None
    test_acc_adv: float | None = None
    test_acc_fgm_l2: float | None = None
    message: str = ""
    extra: dict[str, float] = field(default_factory=dict)


Event = (
    RunStarted | StepMetrics | StepProgress | EpochSummary | PreviewPanel | EvaluationDone | PauseChanged | LogMessage
    | CheckpointSaved | RunFinished
)
Subscriber = Callable[[Event], None]
