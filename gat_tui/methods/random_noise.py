"""Random perturbation training (Table 2 'Random perturbation'): Eq. 4 with a random direction.

The classifier sees x and x + ε·r/‖r‖₂ with r Gaussian: the same L2 size as fast-gradient L2
training, but with no information from the gradient, which isolates what the gradient adds.
"""

from __future__ import annotations

from torch import nn

from gat_tui.attacks import RandomL2
from gat_tui.methods.base import AttackTraining


class RandomPerturbationTraining(AttackTraining):
    def __init__(self, classifier: nn.Module, lr_f: float, alpha: float, eps: float, clip: bool) -> None:
        super().__init__(classifier, lr_f, alpha, eps, clip, RandomL2(clip))
