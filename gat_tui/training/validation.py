"""Accuracy of a method's classifier on a split: clean, under its own perturbation, under FGM-L2,
and (when asked, on its own small budget) under PGD.

Figures accumulate on the device and are read back once per split (one host sync).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gat_tui.attacks import FGML2, PGDL2, PGDLinf
from gat_tui.config import EvalConfig
from gat_tui.data import to_model_input
from gat_tui.events import EpochSummary, PreviewPanel
from gat_tui.methods.base import TrainingMethod


@dataclass(frozen=True)
class SplitFigures:
    acc_clean: float
    acc_adv: float | None
    acc_fgm_l2: float
    pert_l2: float | None
    pert_linf: float | None
    loss_g: float | None
    acc_pgd: float | None = None  # on the first `PgdBudget.images` images only; None when not measured

    def figure(self, metric: str) -> float | None:
        """The selection figure `metric` (`train.select_best_by`'s choices, or 'val_loss_g') of these figures."""
        by_metric = {
            "val_acc_clean": self.acc_clean, "val_acc_fgm_l2": self.acc_fgm_l2, "val_acc_pgd": self.acc_pgd, "val_loss_g": self.loss_g,
        }
        return by_metric[metric]

    def epoch_summary(self, epoch: int, step: int, time: float, is_best: bool, seconds: float) -> EpochSummary:
        """These figures as the validation event of an epoch."""
        return EpochSummary(
            epoch=epoch,
            step=step,
            time=time,
            val_acc_clean=self.acc_clean,
            val_acc_adv=self.acc_adv,
            val_acc_fgm_l2=self.acc_fgm_l2,
            val_pert_l2=self.pert_l2,
            val_pert_linf=self.pert_linf,
            val_loss_g=self.loss_g,
            is_best=is_best,
            epoch_seconds=seconds,
            val_acc_pgd=self.acc_pgd,
        )


@dataclass(frozen=True)
class PgdBudget:
    """The validation PGD figure's attack: `steps` iterations of 2.5·eps/steps from a random start,
    on the first `images` images of the split (0 = all)."""

    norm: str
    eps: float
    steps: int
    images: int

    @classmethod
    def from_config(cls, config: EvalConfig) -> PgdBudget:
        return cls(config.pgd_norm, config.pgd_eps, config.pgd_steps, config.pgd_images)


def _correct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(dim=1) == labels).sum()


def evaluate_split(
    method: TrainingMethod,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    fgm_eps: float,
    clip: bool,
    channels_last: bool,
    pgd: PgdBudget | None = None,
) -> SplitFigures:
    """Evaluate with the networks in eval mode (dropout off); restores training mode after.

    With `pgd`, also the accuracy under that PGD attack of the split's first `pgd.images` images.
    """
    method.eval()
    classifier = method.classifier
    fgm_attack = FGML2(clip)
    pgd_attack = None if pgd is None else (PGDLinf if pgd.norm == "linf" else PGDL2)(clip, steps=pgd.steps)
    pgd_count = 0 if pgd is None else (images.shape[0] if pgd.images == 0 else min(pgd.images, images.shape[0]))
    device = images.device
    zero = torch.zeros((), device=device)
    sums = {name: zero.clone() for name in ("clean", "adv", "fgm", "l2", "linf", "loss_g", "pgd")}
    has_adv = has_loss = False
    try:
        for start in range(0, images.shape[0], batch_size):
            x = to_model_input(images[start : start + batch_size], channels_last)
            y = labels[start : start + batch_size]
            with torch.no_grad():
                sums["clean"] += _correct(classifier(x), y)
            perturbed = method.perturb(x, y)
            if perturbed is not None:
                has_adv = True
                with torch.no_grad():
                    sums["adv"] += _correct(classifier(perturbed.adversarial), y)
                sums["l2"] += perturbed.l2().sum().detach()
                sums["linf"] += perturbed.linf().sum().detach()
            loss = method.validation_loss(x, y)
            if loss is not None:
                has_loss = True
                sums["loss_g"] += loss.detach()
            attacked = fgm_attack.perturb(classifier, x, y, fgm_eps)
            with torch.no_grad():
                sums["fgm"] += _correct(classifier(attacked.adversarial), y)
            if pgd is not None and pgd_attack is not None and start < pgd_count:
                x_pgd, y_pgd = x[: pgd_count - start], y[: pgd_count - start]
                attacked = pgd_attack.perturb(classifier, x_pgd, y_pgd, pgd.eps)
                with torch.no_grad():
                    sums["pgd"] += _correct(classifier(attacked.adversarial), y_pgd)
    finally:
        method.train()
    count = images.shape[0]
    # this is the one host sync of the evaluation
    values = dict(zip(sums, (torch.stack(list(sums.values())) / count).tolist()))
    if pgd_count:
        values["pgd"] *= count / pgd_count  # a fraction of the images attacked, not of the split
    return SplitFigures(
        acc_clean=values["clean"],
        acc_adv=values["adv"] if has_adv else None,
        acc_fgm_l2=values["fgm"],
        pert_l2=values["l2"] if has_adv else None,
        pert_linf=values["linf"] if has_adv else None,
        loss_g=values["loss_g"] if has_loss else None,
        acc_pgd=values["pgd"] if pgd_count else None,
    )


def preview_panel(
    method: TrainingMethod,
    images: torch.Tensor,
    labels: torch.Tensor,
    epoch: int,
    class_names: list[str],
    channels_last: bool,
) -> PreviewPanel:
    """The method's perturbation of a fixed set of validation images, for the previews."""
    method.eval()
    try:
        x = to_model_input(images, channels_last)
        perturbed = method.perturb(x, labels)
        adversarial = perturbed.adversarial if perturbed is not None else x
        with torch.no_grad():
            predicted_clean = method.classifier(x).argmax(dim=1)
            predicted_adversarial = method.classifier(adversarial).argmax(dim=1)
    finally:
        method.train()

    def to_numpy(tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().float().contiguous().cpu().numpy()

    return PreviewPanel(
        epoch=epoch,
        images=to_numpy(x),
        perturbations=to_numpy(adversarial - x),
        adversarial=to_numpy(adversarial),
        labels=labels.tolist(),
        predicted_clean=predicted_clean.tolist(),
        predicted_adversarial=predicted_adversarial.tolist(),
        class_names=class_names,
    )
