"""One-step fast-gradient attacks (Goodfellow et al. 2015), the paper's Eq. 1 and Eq. 3.

Fast-gradient adversarial training (`methods.fast_gradient`, Eq. 2 and 4) uses these classes.
"""

from __future__ import annotations

import torch
from torch import nn

from gat_tui.attacks.base import Attack, Perturbed, apply_perturbation, cross_entropy_input_gradient, per_sample_l2


class FGSM(Attack):
    """x + ε·sign(∇x J(x, y)) (Eq. 1); ε is an L-inf bound on pixels in [0, 1] (L-inf norm ε before clipping)."""

    name = "fgsm"
    norm = "linf"
    default_eps = (1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255)

    def perturb(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Perturbed:
        gradient = cross_entropy_input_gradient(source, images, labels)
        return apply_perturbation(images, eps * gradient.sign(), self.clip)


class FGML2(Attack):
    """x + ε·∇x J / ‖∇x J‖₂ (Eq. 3); ε is the L2 norm over all C·H·W values of an image."""

    name = "fgm-l2"
    norm = "l2"
    default_eps = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)

    def perturb(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Perturbed:
        gradient = cross_entropy_input_gradient(source, images, labels)
        return apply_perturbation(images, eps * gradient / per_sample_l2(gradient), self.clip)
