"""Attacks, one family per module; `ATTACKS` names those `gat-tui eval` and sweeps offer, and
`AUTOATTACKS` the AutoAttack family (pyautoattack, an optional extra) that `gat-tui eval` adds.

The training methods build their perturbations from these same classes, so each equation
has one home.
"""

from __future__ import annotations

from gat_tui.attacks.autoattack import APGDCE, APGDDLR, AUTOATTACKS, AutoAttack
from gat_tui.attacks.base import Attack, Perturbed
from gat_tui.attacks.fast_gradient import FGML2, FGSM
from gat_tui.attacks.gat import GATAttack
from gat_tui.attacks.pgd import PGDL2, PGDLinf
from gat_tui.attacks.random_noise import RandomL2, RandomLinf

ATTACKS: dict[str, type[Attack]] = {
    cls.name: cls for cls in (FGSM, FGML2, RandomL2, PGDLinf, PGDL2, GATAttack)
}

__all__ = ["ATTACKS", "AUTOATTACKS", "APGDCE", "APGDDLR", "AutoAttack", "Attack", "Perturbed", "FGSM", "FGML2", "RandomL2", "RandomLinf", "PGDLinf", "PGDL2", "GATAttack"]
