"""Fast-gradient adversarial training (Goodfellow et al. 2015), Table 2 'Adversarial training'.

`fg_linf` minimises Eq. 2: α·J(x, y) + (1 − α)·J(x + ε·sign(∇x J), y).
`fg_l2` minimises Eq. 4: the same with the L2 step ε·∇x J / ‖∇x J‖₂ of Eq. 3.
The perturbation is recomputed from the current classifier at every step.
"""

from __future__ import annotations

import torch
from torch import nn

from gat_tui.attacks import FGML2, FGSM, Perturbed
from gat_tui.methods.base import DrawBatch, StepResult, TrainingMethod, mixed_loss, optimizer_step, step_norms


class FastGradientTraining(TrainingMethod):
    def __init__(self, classifier: nn.Module, lr_f: float, alpha: float, eps: float, clip: bool, norm: str) -> None:
        super().__init__(classifier, generator=None)
        if norm not in ("l2", "linf"):
            raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}")
        self.classifier_optimizer = torch.optim.Adam(classifier.parameters(), lr=lr_f)
        self.alpha, self.eps, self.clip, self.norm = alpha, eps, clip, norm
        self.attack = FGSM(clip) if norm == "linf" else FGML2(clip)

    def perturb(self, images: torch.Tensor, labels: torch.Tensor) -> Perturbed:
        return self.attack.perturb(self.classifier, images, labels, self.eps)

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, draw_batch: DrawBatch) -> StepResult:
        perturbed = self.perturb(images, labels)
        mixed = mixed_loss(self.classifier, images, perturbed.adversarial.detach(), labels, self.alpha)
        optimizer_step(self.classifier_optimizer, mixed.loss, list(self.classifier.parameters()))
        pert_l2, pert_linf = step_norms(perturbed)
        return StepResult(mixed.loss.detach(), None, pert_l2, pert_linf, mixed.acc_clean, mixed.acc_adv)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"classifier": self.classifier_optimizer}
