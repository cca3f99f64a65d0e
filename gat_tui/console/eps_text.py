"""ε as papers write it: `8/255` for an L∞ size that is a whole number of 255ths, else `0.5`."""

from __future__ import annotations

from gat_tui.attacks import ATTACKS

# how far from a whole number of 255ths an L∞ ε may be and still print as one (float noise of k/255)
_TOLERANCE = 1e-6


def attack_norm(attack: str, norm: str | None = None) -> str | None:
    """The norm an attack's ε bounds: the row's own (AutoAttack, APGD) or the attack class's; None if unknown."""
    if norm is not None:
        return norm
    known = ATTACKS.get(attack)
    return known.norm if known is not None else None


def eps_text(eps: float | None, norm: str | None) -> str:
    """`k/255` for L∞ sizes of whole 255ths (0.003921... -> 1/255), `0.5` otherwise, `-` for no ε."""
    if eps is None:
        return "-"
    if norm == "linf" and eps > 0:
        steps = eps * 255
        if abs(steps - round(steps)) < _TOLERANCE:
            return f"{round(steps)}/255"
    return f"{eps:g}"
