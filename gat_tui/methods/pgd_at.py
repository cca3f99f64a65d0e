"""PGD adversarial training (Madry et al. 2018, "Towards Deep Learning Models Resistant to
Adversarial Attacks", Eq. 2.1): min over θ of E[max over ‖δ‖ ≤ ε of J(x + δ, y)].

The inner maximum is `steps` PGD iterations (`gat_tui.attacks.pgd`, L-inf or L2, from a random
point of the ball by default), recomputed from the current classifier at every step. The outer
step minimises α·J(x, y) + (1 − α)·J(x_pgd, y), the paper's Eq. 2 form; Madry et al. train on
the PGD examples alone (α = 0, as the pgd_at presets set). As the fast-gradient methods, the
attack runs with the classifier in training mode.
"""

from __future__ import annotations

from torch import nn

from gat_tui.attacks import PGDL2, PGDLinf
from gat_tui.methods.base import AttackTraining


class PGDAdversarialTraining(AttackTraining):
    def __init__(
        self,
        classifier: nn.Module,
        lr_f: float,
        alpha: float,
        eps: float,
        clip: bool,
        norm: str,
        steps: int,
        step_size: float | None,
        random_start: bool,
    ) -> None:
        if norm not in ("l2", "linf"):
            raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}")
        attack = PGDLinf if norm == "linf" else PGDL2
        super().__init__(classifier, lr_f, alpha, eps, clip, attack(clip, steps=steps, step_size=step_size, random_start=random_start))
        self.norm = norm
