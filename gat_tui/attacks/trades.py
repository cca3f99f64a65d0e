"""TRADES' inner maximisation (Zhang et al. 2019, Eq. 5 and Algorithm 1): PGD on a KL divergence.

x' = argmax over the ε-ball around x of KL(f(x) ‖ f(x')), with f the softmax of the logits:
the PGD loop of `gat_tui.attacks.pgd` (sign steps for L-inf, normalised steps for L2, projection
onto the ball and into [0, 1]) ascending ∂KL(f(x) ‖ f(x'))/∂x' instead of the cross-entropy's,
and starting at x + 0.001·N(0, 1) as the authors' code does. The labels are not used: the
attack pushes x' away from the model's own prediction on x. Default step 2.5·ε/steps, which is
the paper's 2/255 at ε = 8/255 and 10 steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as functional
from torch import nn

from gat_tui.attacks.pgd import _PGD, PGDL2, PGDLinf

# the standard deviation of the Gaussian start, from the TRADES authors' code
START_STD = 0.001


def kl_input_gradient(model: nn.Module, clean_probabilities: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """∂/∂x' of Σ_batch KL(f(x) ‖ f(x')), with f(x) = `clean_probabilities` held fixed (it does not depend on x')."""
    current = current.detach().requires_grad_(True)
    divergence = functional.kl_div(functional.log_softmax(model(current), dim=1), clean_probabilities, reduction="sum")
    (gradient,) = torch.autograd.grad(divergence, current)
    return gradient


class _TradesObjective(_PGD):
    def _start(self, images: torch.Tensor, eps: float) -> torch.Tensor:
        return self._project(START_STD * torch.randn_like(images), eps)

    def _target(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # f(x), once per attack: it is the same at every step
        with torch.no_grad():
            return functional.softmax(source(images), dim=1)

    def _loss_gradient(self, source: nn.Module, current: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return kl_input_gradient(source, target, current)


class TradesLinf(_TradesObjective, PGDLinf):
    """TRADES' L-inf inner maximisation: ε bounds every pixel's change."""

    name = "trades-linf"


class TradesL2(_TradesObjective, PGDL2):
    """TRADES' inner maximisation in an L2 ball of radius ε per image."""

    name = "trades-l2"
