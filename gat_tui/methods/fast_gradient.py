"""Fast-gradient adversarial training (Goodfellow et al. 2015), Table 2 'Adversarial training'.

`fg_linf` minimises Eq. 2: α·J(x, y) + (1 − α)·J(x + ε·sign(∇x J), y).
`fg_l2` minimises Eq. 4: the same with the L2 step ε·∇x J / ‖∇x J‖₂ of Eq. 3.
The perturbation is recomputed from the current classifier at every step.
"""

from __future__ import annotations

from torch import nn

from gat_tui.attacks import FGML2, FGSM
from gat_tui.methods.base import AttackTraining


class FastGradientTraining(AttackTraining):
    def __init__(self, classifier: nn.Module, lr_f: float, alpha: float, eps: float, clip: bool, norm: str) -> None:
        if norm not in ("l2", "linf"):
            raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}")
        super().__init__(classifier, lr_f, alpha, eps, clip, FGSM(clip) if norm == "linf" else FGML2(clip))
        self.norm = norm
