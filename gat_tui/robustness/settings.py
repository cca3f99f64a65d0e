"""The settings an evaluation's attacks ran with, for the table's heading and the JSON record.

A figure under PGD or AutoAttack means little without its steps, step size, random start and
restarts, or AutoAttack's version and iterations: `attack_settings` collects them once per
attack, as the attack objects (and, for AutoAttack, pyautoattack itself) hold them.
"""

from __future__ import annotations

from collections.abc import Sequence

from gat_tui.attacks.autoattack import APGD, AutoAttack
from gat_tui.attacks.base import Attack
from gat_tui.attacks.pgd import _PGD

# how gat-tui's PGD picks its step when none is given (see attacks/pgd.py)
DEFAULT_PGD_STEP = "2.5*eps/steps"


def attack_settings(attacks: Sequence[Attack]) -> dict[str, dict[str, object]]:
    """attack name -> its settings, for the attacks that have any (FGSM, FGM-L2 and random are one step)."""
    found: dict[str, dict[str, object]] = {}
    for attack in attacks:
        if isinstance(attack, _PGD):
            found[attack.name] = {
                "steps": attack.steps,
                "step_size": attack.step_size if attack.step_size is not None else DEFAULT_PGD_STEP,
                "random_start": attack.random_start,
                "restarts": 1,  # gat-tui's PGD makes one run per image
            }
        elif isinstance(attack, AutoAttack):
            found[attack.name] = {
                "norm": attack.norm,
                "version": attack.version,
                "stages": list(attack.stage_names),
                "stage_settings": attack.stage_settings,  # as pyautoattack ran them; None if no stage ran here
            }
        elif isinstance(attack, APGD):
            found[attack.name] = {"norm": attack.norm, "iterations": attack.iterations, "restarts": attack.restarts}
    return found
