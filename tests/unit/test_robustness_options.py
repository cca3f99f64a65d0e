"""`EvalOptions`: every evaluation option is checked once, when the options are made, naming the option."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from gat_tui.robustness.options import EvalOptions
from gat_tui.robustness.plan import AutoAttackOptions, EvalError


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"eps_values": (0.1, float("nan"))}, "--eps nan: not a finite size; expected finite numbers >= 0"),
        ({"eps_values": (-1.0,)}, "--eps -1.0: not a finite size"),
        ({"split": "train"}, "--split 'train': expected val or test"),
        ({"limit": -1}, "--limit -1: expected a whole number >= 0"),
        ({"batch_size": 0}, "--batch-size 0: expected a whole number >= 1"),
        ({"pgd_steps": 0}, "--pgd-steps 0: expected a whole number >= 1"),
        ({"pgd_step_size": 0.0}, "--pgd-step-size 0.0: expected a finite number > 0"),
        ({"pgd_step_size": float("inf")}, "--pgd-step-size inf: expected a finite number > 0"),
        ({"autoattack": AutoAttackOptions(norm="l1")}, "--norm 'l1': expected linf or l2"),
        ({"autoattack": AutoAttackOptions(version="fast")}, "--version 'fast': expected standard, plus, rand or custom"),
    ],
)
def test_each_bad_option_is_refused_naming_it_and_what_is_accepted(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(EvalError) as raised:
        EvalOptions(**changes)
    assert message in str(raised.value)
    with pytest.raises(EvalError):  # also when changed on valid options: `replace` checks again
        dataclasses.replace(EvalOptions(), **changes)


def test_the_edges_of_each_range_are_accepted() -> None:
    options = EvalOptions(
        eps_values=(0.0, 8 / 255), split="val", limit=0, batch_size=1, pgd_steps=1, pgd_step_size=1e-6,
        autoattack=AutoAttackOptions("l2", "custom", ("apgd-ce",)),
    )
    assert options.batch_size == 1 and options.autoattack.version == "custom"
    assert EvalOptions().batch_size is None  # the data config's eval_batch_size


def test_the_resume_key_and_source_name_follow_the_options(tmp_path: Path) -> None:
    source = tmp_path / "source.safetensors"
    source.write_bytes(b"x")
    direct = EvalOptions(split="val", limit=8)
    assert direct.source_name is None
    assert direct.resume_identity() == {"source": None, "split": "val", "limit": 8}
    indirect = EvalOptions(source=source)
    assert indirect.source_name == str(source)
    assert indirect.resume_identity()["source"] == {"path": str(source.resolve()), "size": 1, "mtime_ns": source.stat().st_mtime_ns}


def test_callbacks_do_not_make_options_differ() -> None:
    assert EvalOptions(progress=lambda what, done, total: None, on_notice=print) == EvalOptions()
