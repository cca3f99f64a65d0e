"""Projected gradient descent (Madry et al. 2018) with a random start, in L-inf and L2.

With `random_start=False` the first step starts from x itself, as torchattacks' PGD with
`random_start=False` (the equal images are a test). Each of `steps` iterations moves by `step_size` along the sign (L-inf) or the normalised
gradient (L2) of the cross-entropy, then projects back into the ε-ball around x and into
[0, 1]. The default step size is 2.5·ε/steps, Madry et al.'s choice.

Subclasses change what is ascended (`_loss_gradient`) and where it starts (`_start`): TRADES'
inner maximisation (`gat_tui.attacks.trades`) is this same loop on a KL divergence.
"""

from __future__ import annotations

import torch
from torch import nn

from gat_tui.attacks.base import Attack, Perturbed, apply_perturbation, cross_entropy_input_gradient, per_sample_l2


class _PGD(Attack):
    def __init__(self, clip: bool = True, steps: int = 10, step_size: float | None = None, random_start: bool = True) -> None:
        super().__init__(clip)
        if steps < 1:
            raise ValueError(f"PGD steps must be >= 1, got {steps}")
        self.steps = steps
        self.step_size = step_size
        self.random_start = random_start

    def _step(self, gradient: torch.Tensor, size: float) -> torch.Tensor:
        raise NotImplementedError

    def _project(self, perturbation: torch.Tensor, eps: float) -> torch.Tensor:
        raise NotImplementedError

    def _random_start(self, images: torch.Tensor, eps: float) -> torch.Tensor:
        raise NotImplementedError

    def _start(self, images: torch.Tensor, eps: float) -> torch.Tensor:
        """The perturbation before the first step: a random point of the ε-ball, or none."""
        if self.random_start:
            return self._project(self._random_start(images, eps), eps)
        return torch.zeros_like(images)

    def _target(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """What the ascended loss compares each step's output with, computed once per attack: the labels."""
        return labels

    def _loss_gradient(self, source: nn.Module, current: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The gradient PGD ascends at the current point `current` of the ball: ∂J(x', y)/∂x' for target y."""
        return cross_entropy_input_gradient(source, current, target)

    def perturb(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Perturbed:
        size = self.step_size if self.step_size is not None else 2.5 * eps / self.steps
        perturbation = apply_perturbation(images, self._start(images, eps), self.clip).perturbation
        target = self._target(source, images, labels)
        for _ in range(self.steps):
            gradient = self._loss_gradient(source, images + perturbation, target)
            perturbation = self._project(perturbation + self._step(gradient, size), eps)
            perturbation = apply_perturbation(images, perturbation, self.clip).perturbation
        return apply_perturbation(images, perturbation.detach(), self.clip)


class PGDLinf(_PGD):
    """L-inf PGD: ε bounds every pixel's change."""

    name = "pgd-linf"
    norm = "linf"
    default_eps = (1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255)

    def _random_start(self, images: torch.Tensor, eps: float) -> torch.Tensor:
        return torch.empty_like(images).uniform_(-eps, eps)

    def _step(self, gradient: torch.Tensor, size: float) -> torch.Tensor:
        return size * gradient.sign()

    def _project(self, perturbation: torch.Tensor, eps: float) -> torch.Tensor:
        return perturbation.clamp(-eps, eps)


class PGDL2(_PGD):
    """L2 PGD: ε bounds the L2 norm of each image's change over its C·H·W values."""

    name = "pgd-l2"
    norm = "l2"
    default_eps = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)

    def _random_start(self, images: torch.Tensor, eps: float) -> torch.Tensor:
        direction = torch.randn_like(images)
        radius = torch.rand(images.shape[0], device=images.device, dtype=images.dtype) * eps
        return direction / per_sample_l2(direction) * radius.view(-1, *([1] * (images.dim() - 1)))

    def _step(self, gradient: torch.Tensor, size: float) -> torch.Tensor:
        return size * gradient / per_sample_l2(gradient)

    def _project(self, perturbation: torch.Tensor, eps: float) -> torch.Tensor:
        norms = per_sample_l2(perturbation)
        return perturbation * torch.clamp(eps / norms, max=1.0)

