"""Random directions of a given size: the baseline that shows what the gradient adds.

Random-perturbation training (`methods.random_noise`, Table 2) uses `RandomL2`.
"""

from __future__ import annotations

import torch
from torch import nn

from gat_tui.attacks.base import Attack, Perturbed, apply_perturbation, per_sample_l2


class RandomL2(Attack):
    """x + ε·r/‖r‖₂ with r Gaussian, per-sample over C·H·W; the source model is not used."""

    name = "random"
    norm = "l2"
    default_eps = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)

    def perturb(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Perturbed:
        noise = torch.randn(images.shape, device=images.device, dtype=images.dtype)
        return apply_perturbation(images, eps * noise / per_sample_l2(noise), self.clip)


class RandomLinf(Attack):
    """x + ε·sign(r) with r Gaussian: uniformly random signs, the L-inf counterpart of FGSM."""

    name = "random-linf"
    norm = "linf"
    default_eps = (1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255)

    def perturb(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Perturbed:
        noise = torch.randn(images.shape, device=images.device, dtype=images.dtype)
        return apply_perturbation(images, eps * noise.sign(), self.clip)
