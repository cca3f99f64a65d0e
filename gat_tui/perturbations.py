"""Adversarial perturbations of the paper, each a pure function of (model, images, labels).

Images are float tensors [N, C, H, W] with pixels in [0, 1]. Every function returns a
`Perturbed`: the images actually fed to the classifier and the perturbation actually applied
(after clipping, when asked), so reported norms are those of what the classifier saw.
None of them changes the model's train/eval mode or its parameters' `.grad`.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def per_sample_l2(tensor: torch.Tensor) -> torch.Tensor:
    """L2 norm of each sample over all its values, shaped [N, 1, 1, 1] to broadcast."""
    return tensor.flatten(1).norm(p=2, dim=1).clamp_min(_NORM_FLOOR).view(-1, *([1] * (tensor.dim() - 1)))


def fgsm_linf(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float, clip: bool = True) -> Perturbed:
    """Fast gradient sign method, Eq. 1: x + ε·sign(∇x J(x, y)); L-inf norm ε before clipping."""
    gradient = cross_entropy_input_gradient(model, images, labels)
    return apply_perturbation(images, eps * gradient.sign(), clip)


def fgm_l2(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float, clip: bool = True) -> Perturbed:
    """Fast gradient method with L2 norm, Eq. 3: x + ε·∇x J / ‖∇x J‖₂, per-sample over C·H·W."""
    gradient = cross_entropy_input_gradient(model, images, labels)
    return apply_perturbation(images, eps * gradient / per_sample_l2(gradient), clip)


def random_perturbation(
    images: torch.Tensor, eps: float, norm: str = "l2", clip: bool = True, generator: torch.Generator | None = None
) -> Perturbed:
    """A random direction of the same size as the fast-gradient perturbations.

    `norm="l2"`: a Gaussian direction scaled to L2 norm ε. `norm="linf"`: uniformly random signs
    times ε, the L-inf counterpart of FGSM.
    """
    noise = torch.randn(images.shape, device=images.device, dtype=images.dtype, generator=generator)
    if norm == "l2":
        direction = noise / per_sample_l2(noise)
    elif norm == "linf":
        direction = noise.sign()
    else:
        raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}")
    return apply_perturbation(images, eps * direction, clip)


def true_class_probability_gradient(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Δ = ∂F(x)_y / ∂x, the gradient of the softmax probability of the true class (Section 3)."""
    images = images.detach().requires_grad_(True)
    probabilities = functional.softmax(model(images), dim=1)
    true_class = probabilities.gather(1, labels.view(-1, 1)).sum()
    (gradient,) = torch.autograd.grad(true_class, images)
    return gradient


def gat_perturbation(
    classifier: nn.Module, generator: nn.Module, images: torch.Tensor, labels: torch.Tensor, clip: bool = True
) -> Perturbed:
    """The GAT perturbation G(Δ) added to x, as data: no graph is kept through F or G.

    For G's own training step, Eq. 9 needs the graph through G: see `methods.gat.generator_loss`.
    """
    gradient = true_class_probability_gradient(classifier, images, labels)
    with torch.no_grad():
        return apply_perturbation(images, generator(gradient), clip)
