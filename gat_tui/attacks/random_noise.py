"""A random direction of L2 norm ε: the baseline that shows what the gradient adds."""

from __future__ import annotations

import torch
from torch import nn

from gat_tui.attacks.base import Attack
from gat_tui.perturbations import Perturbed, random_perturbation


class RandomL2(Attack):
    """x + ε·r/‖r‖₂ with r Gaussian; the source model is not used."""

    name = "random"
    norm = "l2"
    default_eps = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)

    def __call__(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Perturbed:
        return random_perturbation(images, eps, norm="l2", clip=self.clip)
