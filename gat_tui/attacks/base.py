"""What an attack is, and the pieces every attack is made of.

An attack perturbs images (float [N, C, H, W], pixels in [0, 1]) with the gradients of a
*source* model; the evaluated (target) model then classifies them. Source and target are the
same model for a direct attack (the paper's Fig. 3) and different for an indirect one (Fig. 4).

Each attack class owns its equation in `perturb`, which uses the model in whatever mode the
caller has it in: the training methods perturb with the classifier in training mode, as the
paper's training does. Calling the attack (`attack(model, x, y, eps)`) is the evaluation entry:
it switches the model to eval mode for the attack and restores its mode after, as torchattacks
does. Neither changes the model's parameters or their `.grad`.

Every attack returns a `Perturbed`: the images actually fed to the classifier and the
perturbation actually applied (after clipping, when asked), so reported norms are those of
what the classifier saw.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as functional
from torch import nn

# keeps a zero gradient (a saturated softmax) from dividing by zero
_NORM_FLOOR = 1e-12


@dataclass(frozen=True)
class Perturbed:
    adversarial: torch.Tensor
    perturbation: torch.Tensor

    def l2(self) -> torch.Tensor:
        """Per-sample L2 norm over all C·H·W values, shape [N]."""
        return self.perturbation.flatten(1).norm(p=2, dim=1)

    def linf(self) -> torch.Tensor:
        """Per-sample L-inf norm, shape [N]."""
        return self.perturbation.flatten(1).abs().amax(dim=1)


def apply_perturbation(images: torch.Tensor, perturbation: torch.Tensor, clip: bool) -> Perturbed:
    adversarial = images + perturbation
    if clip:
        adversarial = adversarial.clamp(0.0, 1.0)
        perturbation = adversarial - images
    return Perturbed(adversarial, perturbation)


def cross_entropy_input_gradient(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """∂J(x, y)/∂x with J the cross-entropy of the logits, as ART and torchattacks use."""
    images = images.detach().requires_grad_(True)
    loss = functional.cross_entropy(model(images), labels, reduction="sum")
    (gradient,) = torch.autograd.grad(loss, images)
    return gradient


def true_class_probability_gradient(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Δ = ∂F(x)_y / ∂x, the gradient of the softmax probability of the true class (Section 3)."""
    images = images.detach().requires_grad_(True)
    probabilities = functional.softmax(model(images), dim=1)
    true_class = probabilities.gather(1, labels.view(-1, 1)).sum()
    (gradient,) = torch.autograd.grad(true_class, images)
    return gradient


def per_sample_l2(tensor: torch.Tensor) -> torch.Tensor:
    """L2 norm of each sample over all its values, shaped [N, 1, 1, 1] to broadcast."""
    return tensor.flatten(1).norm(p=2, dim=1).clamp_min(_NORM_FLOOR).view(-1, *([1] * (tensor.dim() - 1)))


class Attack(ABC):
    name: ClassVar[str]
    # "l2" or "linf": what eps measures; None for attacks with their own power (the GAT attacker).
    # A class attribute, except for AutoAttack and APGD, whose instances are built for one norm.
    norm: str | None
    default_eps: ClassVar[tuple[float, ...]]

    def __init__(self, clip: bool = True) -> None:
        self.clip = clip

    def __call__(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Perturbed:
        """Perturb `images` with `source` in eval mode (dropout off); `source`'s mode is restored after."""
        was_training = source.training
        source.eval()
        try:
            return self.perturb(source, images, labels, eps)
        finally:
            source.train(was_training)

    @abstractmethod
    def perturb(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Perturbed:
        """The attack's equation on `images` (pixels in [0, 1]), with `source` in the caller's mode."""
