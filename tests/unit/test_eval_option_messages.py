"""Each refused evaluation option's message, word for word: the option as typed, its value, and what is accepted."""

from __future__ import annotations

from typing import Any

import pytest

from gat_tui.robustness.options import EvalOptions
from gat_tui.robustness.plan import AutoAttackOptions, EvalError


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"eps_values": (0.5, float("inf"))}, "--eps inf: not a finite size; expected finite numbers >= 0"),
        ({"eps_values": (-0.25,)}, "--eps -0.25: not a finite size; expected finite numbers >= 0"),
        ({"split": "train"}, "--split 'train': expected val or test"),
        ({"limit": -2}, "--limit -2: expected a whole number >= 0 (0 = every image of the split)"),
        ({"batch_size": 0}, "--batch-size 0: expected a whole number >= 1"),
        ({"pgd_steps": 0}, "--pgd-steps 0: expected a whole number >= 1"),
        ({"pgd_step_size": -0.5}, "--pgd-step-size -0.5: expected a finite number > 0"),
        ({"pgd_step_size": float("nan")}, "--pgd-step-size nan: expected a finite number > 0"),
        ({"autoattack": AutoAttackOptions(norm="L2")}, "--norm 'L2': expected linf or l2"),
        ({"autoattack": AutoAttackOptions(version="fast")}, "--version 'fast': expected standard, plus, rand or custom"),
    ],
)
def test_the_message_of_each_refused_option(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(EvalError) as raised:
        EvalOptions(**changes)
    assert str(raised.value) == message


def test_the_smallest_accepted_values() -> None:
    options = EvalOptions(eps_values=(0.0,), limit=0, batch_size=1, pgd_steps=1, pgd_step_size=5e-324,
                          autoattack=AutoAttackOptions("l2", "plus"))
    assert (options.eps_values, options.limit, options.batch_size, options.pgd_steps) == ((0.0,), 0, 1, 1)
    assert EvalOptions(split="val", autoattack=AutoAttackOptions("linf", "rand")).split == "val"
