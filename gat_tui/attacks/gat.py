"""The GAT perturbation: a generator maps Δ = ∂F(x)_y/∂x to a perturbation (Section 3).

GAT training (`methods.gat`) perturbs the classifier's inputs with it, and the GAT attacker
(Section 4.2) attacks with a trained generator. Δ comes from the source model; the
perturbation has the generator's own power, so ε is not used (evaluations report the mean L2
and L-inf norms it applied instead). The result is data: no graph is kept through F or G; for
G's own training step, Eq. 9 needs the graph through G (see `methods.gat.generator_loss`).
"""

from __future__ import annotations

import torch
from torch import nn

from gat_tui.attacks.base import Attack, Perturbed, apply_perturbation, true_class_probability_gradient


class GATAttack(Attack):
    name = "gat"
    norm = None
    default_eps = (0.0,)

    def __init__(self, generator: nn.Module, clip: bool = True) -> None:
        super().__init__(clip)
        self.generator = generator

    def __call__(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float = 0.0) -> Perturbed:
        """As `Attack.__call__`, with the generator in eval mode too."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            return super().__call__(source, images, labels, eps)
        finally:
            self.generator.train(was_training)

    def perturb(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float = 0.0) -> Perturbed:
        gradient = true_class_probability_gradient(source, images, labels)
        with torch.no_grad():
            return apply_perturbation(images, self.generator(gradient), self.clip)
