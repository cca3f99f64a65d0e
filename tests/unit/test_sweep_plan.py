"""The sweep file's documented example is itself a valid sweep."""

from __future__ import annotations

import textwrap
from pathlib import Path

from gat_tui.sweep import plan


def test_the_docstring_example_is_a_valid_sweep(tmp_path: Path) -> None:
    assert plan.__doc__ is not None
    example = textwrap.dedent(plan.__doc__.split("\n\n", 1)[1].split("\n\nEvery key", 1)[0])
    path = tmp_path / "example.toml"
    path.write_text(example, encoding="utf-8")
    sweep = plan.load_sweep(path)
    assert [entry.label for entry in sweep.runs] == ["cifar10_baseline", "cifar10_gat", "attacker-c_g=0.001", "attacker-c_g=0.01", "cifar10_dropout_gat"]
    assert sweep.runs[2].attack_target == "cifar10_baseline" and "gat.c_g=0.001" in sweep.runs[2].overrides
    assert sweep.evaluations[0].source == "cifar10_baseline" and sweep.paper == {"cifar10_gat": {"mean": 0.0, "std": 0.0, "n": 50}}
    tuned = sweep.runs[4]
    assert [point.name for point in tuned.tuning] == ["lr_g=1e-06-c_g=0.01", "lr_g=1e-06-c_g=0.1", "lr_g=0.0001-c_g=0.01", "lr_g=0.0001-c_g=0.1"]
    assert tuned.tune_seeds == 3 and tuned.tuning[2].overrides == ("gat.lr_g=0.0001", "gat.c_g=0.01")
    auto = sweep.evaluations[1]
    assert (auto.attack, auto.norm, auto.version, auto.limit, auto.runs) == ("autoattack", "linf", "standard", 1000, tuple(e.label for e in sweep.runs))
    assert len(plan.jobs(sweep)) == 4 * 3 + 50 * (5 + 1 + 5)
