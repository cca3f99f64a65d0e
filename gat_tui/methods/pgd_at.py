"""PGD adversarial training (Madry et al. 2018, "Towards Deep Learning Models Resistant to
Adversarial Attacks", Eq. 2.1): min over θ of E[max over ‖δ‖ ≤ ε of J(x + δ, y)].

The inner maximum is `steps` PGD iterations (`gat_tui.attacks.pgd`, L-inf or L2, from a random
point of the ball by default), recomputed from the current classifier at every step. The outer
step minimises α·J(x, y) + (1 − α)·J(x_pgd, y), the paper's Eq. 2 form; Madry et al. train on
the PGD examples alone (α = 0, as the pgd_at presets set). As the fast-gradient methods, the
attack runs with the classifier in training mode.
"""

from __future__ import annotations

import torch
from torch import nn

from gat_tui.attacks import PGDL2, Perturbed, PGDLinf
from gat_tui.methods.base import DrawBatch, StepResult, TrainingMethod, mixed_loss, optimizer_step, step_norms


class PGDAdversarialTraining(TrainingMethod):
    def __init__(
        self,
        classifier: nn.Module,
        lr_f: float,
        alpha: float,
        eps: float,
        clip: bool,
        norm: str,
        steps: int,
        step_size: float | None,
        random_start: bool,
    ) -> None:
        super().__init__(classifier, generator=None)
        if norm not in ("l2", "linf"):
            raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}")
        self.classifier_optimizer = torch.optim.Adam(classifier.parameters(), lr=lr_f)
        self.alpha, self.eps, self.clip, self.norm = alpha, eps, clip, norm
        attack = PGDLinf if norm == "linf" else PGDL2
        self.attack = attack(clip, steps=steps, step_size=step_size, random_start=random_start)

    def perturb(self, images: torch.Tensor, labels: torch.Tensor) -> Perturbed:
        return self.attack.perturb(self.classifier, images, labels, self.eps)

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, draw_batch: DrawBatch) -> StepResult:
        perturbed = self.perturb(images, labels)
        mixed = mixed_loss(self.classifier, images, perturbed.adversarial, labels, self.alpha)
        optimizer_step(self.classifier_optimizer, mixed.loss, list(self.classifier.parameters()))
        pert_l2, pert_linf = step_norms(perturbed)
        return StepResult(mixed.loss.detach(), None, pert_l2, pert_linf, mixed.acc_clean, mixed.acc_adv)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"classifier": self.classifier_optimizer}
