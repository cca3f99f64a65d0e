"""The GAT attacker (Section 4.2): a trained generator maps Δ = ∂F(x)_y/∂x to a perturbation.

Δ comes from the source model; the perturbation has the generator's own power, so ε is not
used (the evaluation reports the mean L2 and L-inf norms it applied instead).
"""

from __future__ import annotations

import torch
from torch import nn

from gat_tui.attacks.base import Attack
from gat_tui.perturbations import Perturbed, gat_perturbation


class GATAttack(Attack):
    name = "gat"
    norm = None
    default_eps = (0.0,)

    def __init__(self, generator: nn.Module, clip: bool = True) -> None:
        super().__init__(clip)
        self.generator = generator

    def __call__(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Perturbed:
        return gat_perturbation(source, self.generator, images, labels, self.clip)
