"""What a figure read back from a run's files may be: the checks `report` and `export` apply before printing one.

A summary or evaluation record edited by hand, or damaged, must not print as "750.00" or "nan":
an accuracy is a finite fraction in [0, 1], a perturbation norm a finite number >= 0.
"""

from __future__ import annotations

import math


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_accuracy(value: object) -> bool:
    return is_number(value) and 0.0 <= value <= 1.0  # type: ignore[operator]


def is_norm(value: object) -> bool:
    return is_number(value) and value >= 0.0  # type: ignore[operator]


def accuracy_problem(key: str, value: object) -> str | None:
    """Why `value` (at `key`) is not an accuracy, for a warning; None when it is one (or absent: None)."""
    if value is None or is_accuracy(value):
        return None
    return f"{key} = {value!r} is not an accuracy (a fraction in [0, 1]); left out"
