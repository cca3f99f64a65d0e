"""TRADES (Zhang et al. 2019, "Theoretically Principled Trade-off between Robustness and
Accuracy", Eq. 5 and Algorithm 1).

Each step minimises, over the classifier's weights,

    CE(f(x), y) + β · (1/m) Σ KL(f(x) ‖ f(x'))

where f is the softmax of the logits, m the minibatch size, and x' is found first by PGD
ascending KL(f(x) ‖ f(x')) in the ε-ball around x from x + 0.001·N(0, 1)
(`gat_tui.attacks.trades`). As the authors' code, the inner maximisation runs with the
classifier in eval mode, and the outer loss lets gradients flow through both f(x) and f(x').
The paper's CIFAR-10 settings: β = 6, ε = 8/255, 10 steps of 2/255.
"""

from __future__ import annotations

import torch
import torch.nn.functional as functional
from torch import nn

from gat_tui.attacks import Perturbed
from gat_tui.attacks.trades import TradesL2, TradesLinf
from gat_tui.methods.base import DrawBatch, StepResult, TrainingMethod, batch_accuracy, optimizer_step, step_norms


class TradesTraining(TrainingMethod):
    def __init__(
        self, classifier: nn.Module, lr_f: float, beta: float, eps: float, clip: bool, norm: str, steps: int, step_size: float | None
    ) -> None:
        super().__init__(classifier, generator=None)
        if norm not in ("l2", "linf"):
            raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}")
        self.classifier_optimizer = torch.optim.Adam(classifier.parameters(), lr=lr_f)
        self.beta, self.eps, self.clip, self.norm = beta, eps, clip, norm
        attack = TradesLinf if norm == "linf" else TradesL2
        self.attack = attack(clip, steps=steps, step_size=step_size)

    def perturb(self, images: torch.Tensor, labels: torch.Tensor) -> Perturbed:
        # the attack's __call__ switches the classifier to eval mode and back, as the authors' code
        return self.attack(self.classifier, images, labels, self.eps)

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, draw_batch: DrawBatch) -> StepResult:
        perturbed = self.perturb(images, labels)
        clean_logits = self.classifier(images)
        adversarial_logits = self.classifier(perturbed.adversarial)
        natural = functional.cross_entropy(clean_logits, labels)
        # kl_div(log q, p) = Σ p·(log p − log q) = KL(p ‖ q); "batchmean" divides the sum by m
        robust = functional.kl_div(
            functional.log_softmax(adversarial_logits, dim=1), functional.softmax(clean_logits, dim=1), reduction="batchmean"
        )
        loss = natural + self.beta * robust
        optimizer_step(self.classifier_optimizer, loss, list(self.classifier.parameters()))
        pert_l2, pert_linf = step_norms(perturbed)
        return StepResult(
            loss.detach(), None, pert_l2, pert_linf, batch_accuracy(clean_logits, labels), batch_accuracy(adversarial_logits, labels)
        )

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"classifier": self.classifier_optimizer}
