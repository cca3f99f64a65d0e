"""The GAT attacker (Section 4.2, Fig. 2): train only G against a frozen, already trained F.

G minimises Eq. 9 on each minibatch; F's weights never change and F stays in eval mode. The
engine stops early when the validation generator loss has not improved for `patience` epochs,
and keeps the generator with the lowest validation loss as `best`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as functional
from torch import nn

from gat_tui.attacks import GATAttack, Perturbed
from gat_tui.attacks.base import apply_perturbation, true_class_probability_gradient
from gat_tui.methods.base import DrawBatch, StepResult, TrainingMethod, optimizer_step, step_norms
from gat_tui.methods.gat import generator_loss


class GatAttackerTraining(TrainingMethod):
    selection_metric = "val_loss_g"
    selection_lower_is_better = True

    def __init__(
        self, classifier: nn.Module, generator: nn.Module, lr_g: float, c_g: float, clip: bool, patience: int
    ) -> None:
        super().__init__(classifier, generator)
        self.patience = patience
        self.generator: nn.Module = generator
        for parameter in classifier.parameters():
            parameter.requires_grad_(False)
        self.generator_optimizer = torch.optim.Adam(generator.parameters(), lr=lr_g)
        self.c_g, self.clip = c_g, clip
        self.attack = GATAttack(generator, clip)

    def train(self) -> None:
        self.classifier.eval()  # frozen: no dropout noise in the model under attack
        self.generator.train()

    def perturb(self, images: torch.Tensor, labels: torch.Tensor) -> Perturbed:
        return self.attack.perturb(self.classifier, images, labels)

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, draw_batch: DrawBatch) -> StepResult:
        loss_g, perturbed = generator_loss(self.classifier, self.generator, images, labels, self.c_g, self.clip)
        optimizer_step(self.generator_optimizer, loss_g, list(self.generator.parameters()))
        pert_l2, pert_linf = step_norms(perturbed)
        return StepResult(loss_g=loss_g.detach(), pert_l2=pert_l2, pert_linf=pert_linf)

    def validation_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Eq. 9 summed over the batch, so batches of any size average correctly."""
        delta = true_class_probability_gradient(self.classifier, images, labels)
        with torch.no_grad():
            raw_perturbation = self.generator(delta)
            adversarial = apply_perturbation(images, raw_perturbation, self.clip).adversarial
            probability = functional.softmax(self.classifier(adversarial), dim=1).gather(1, labels.view(-1, 1))
            return probability.sum() + self.c_g * raw_perturbation.flatten(1).pow(2).sum()

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.generator_optimizer}
