"""Attacks for `gat-tui eval`, one per module; `ATTACKS` names them for the command line."""

from __future__ import annotations

from gat_tui.attacks.base import Attack
from gat_tui.attacks.fast_gradient import FGML2, FGSM
from gat_tui.attacks.gat import GATAttack
from gat_tui.attacks.pgd import PGDL2, PGDLinf
from gat_tui.attacks.random_noise import RandomL2

ATTACKS: dict[str, type[Attack]] = {
    cls.name: cls for cls in (FGSM, FGML2, RandomL2, PGDLinf, PGDL2, GATAttack)
}

__all__ = ["ATTACKS", "Attack", "FGSM", "FGML2", "RandomL2", "PGDLinf", "PGDL2", "GATAttack"]
