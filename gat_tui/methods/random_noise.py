"""Random perturbation training (Table 2 'Random perturbation'): Eq. 4 with a random direction.

The classifier sees x and x + ε·r/‖r‖₂ with r Gaussian: the same L2 size as fast-gradient L2
training, but with no information from the gradient, which isolates what the gradient adds.
"""

from __future__ import annotations

import torch
from torch import nn

from gat_tui.attacks import Perturbed, RandomL2
from gat_tui.methods.base import DrawBatch, StepResult, TrainingMethod, mixed_loss, optimizer_step, step_norms


class RandomPerturbationTraining(TrainingMethod):
    def __init__(self, classifier: nn.Module, lr_f: float, alpha: float, eps: float, clip: bool) -> None:
        super().__init__(classifier, generator=None)
        self.classifier_optimizer = torch.optim.Adam(classifier.parameters(), lr=lr_f)
        self.alpha, self.eps, self.clip = alpha, eps, clip
        self.attack = RandomL2(clip)

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
