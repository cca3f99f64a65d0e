"""What an attack is: a function of (source model, images, labels, eps) giving a `Perturbed`.

The source model makes the perturbation; the evaluated (target) model classifies it. They are
the same model for a direct attack (the paper's Fig. 3) and different for an indirect one
(Fig. 4). Attacks run the source model in eval mode and leave its parameters' grads alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import nn

from gat_tui.perturbations import Perturbed


class Attack(ABC):
    name: ClassVar[str]
    # "l2" or "linf": what eps measures; None for attacks with their own power (the GAT attacker)
    norm: ClassVar[str | None]
    default_eps: ClassVar[tuple[float, ...]]

    def __init__(self, clip: bool = True) -> None:
        self.clip = clip

    @abstractmethod
    def __call__(self, source: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> Perturbed:
        """Perturb `images` (pixels in [0, 1]) with gradients of `source`."""
