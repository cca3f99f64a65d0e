"""Generative Adversarial Trainer, Algorithm 1 of Lee, Han and Lee (2017).

Each training iteration takes k generator steps, each on a fresh minibatch, then one
classifier step:
- generator (Eq. 9):  L_G = F(x + G(Δ))_y + c_g·‖G(Δ)‖²₂, minimised over G's weights, where
  F(·)_y is the softmax probability of the true class and Δ = ∂F(x)_y/∂x;
- classifier (Eq. 10): L_F = α·J(x, y) + (1 − α)·J(x + G(Δ), y), minimised over F's weights.
Both losses are means over the minibatch; ‖G(Δ)‖²₂ is summed over each sample's C·H·W values.
`dropout_gat` is this method on a classifier with dropout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as functional
from torch import nn

from gat_tui.attacks import GATAttack, Perturbed
from gat_tui.attacks.base import apply_perturbation, true_class_probability_gradient
from gat_tui.methods.base import DrawBatch, StepResult, TrainingMethod, mixed_loss, optimizer_step, step_norms


def generator_loss(
    classifier: nn.Module, generator: nn.Module, images: torch.Tensor, labels: torch.Tensor, c_g: float, clip: bool
) -> tuple[torch.Tensor, Perturbed]:
    """Eq. 9 on a minibatch: mean true-class probability under attack plus c_g·mean ‖G(Δ)‖²₂.

    Also returns the perturbed batch, so callers can report its norms without another pass.
    """
    delta = true_class_probability_gradient(classifier, images, labels)
    raw_perturbation = generator(delta)
    perturbed = apply_perturbation(images, raw_perturbation, clip)
    true_class_probability = functional.softmax(classifier(perturbed.adversarial), dim=1).gather(1, labels.view(-1, 1))
    squared_norm = raw_perturbation.flatten(1).pow(2).sum(dim=1)
    return true_class_probability.mean() + c_g * squared_norm.mean(), perturbed


class GenerativeAdversarialTraining(TrainingMethod):
    def __init__(
        self,
        classifier: nn.Module,
        generator: nn.Module,
        lr_f: float,
        lr_g: float,
        alpha: float,
        c_g: float,
        k: int,
        clip: bool,
    ) -> None:
        super().__init__(classifier, generator)
        self.generator: nn.Module = generator
        self.classifier_optimizer = torch.optim.Adam(classifier.parameters(), lr=lr_f)
        self.generator_optimizer = torch.optim.Adam(generator.parameters(), lr=lr_g)
        self.alpha, self.c_g, self.k, self.clip = alpha, c_g, k, clip
        self.attack = GATAttack(generator, clip)

    def perturb(self, images: torch.Tensor, labels: torch.Tensor) -> Perturbed:
        return self.attack.perturb(self.classifier, images, labels)

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, draw_batch: DrawBatch) -> StepResult:
        generator_parameters = list(self.generator.parameters())
        loss_g_sum = torch.zeros((), device=images.device, dtype=images.dtype)
        for _ in range(self.k):
            generator_images, generator_labels = draw_batch()
            loss_g, _ = generator_loss(
                self.classifier, self.generator, generator_images, generator_labels, self.c_g, self.clip
            )
            optimizer_step(self.generator_optimizer, loss_g, generator_parameters)
            loss_g_sum += loss_g.detach()

        perturbed = self.perturb(images, labels)
        mixed = mixed_loss(self.classifier, images, perturbed.adversarial, labels, self.alpha)
        optimizer_step(self.classifier_optimizer, mixed.loss, list(self.classifier.parameters()))
        pert_l2, pert_linf = step_norms(perturbed)
        return StepResult(mixed.loss.detach(), loss_g_sum / self.k, pert_l2, pert_linf, mixed.acc_clean, mixed.acc_adv)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"classifier": self.classifier_optimizer, "generator": self.generator_optimizer}
