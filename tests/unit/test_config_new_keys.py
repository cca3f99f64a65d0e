"""Keys added for the field's baselines keep older configs loadable, with the behaviour they had."""

from __future__ import annotations

from gat_tui.config import RunConfig, config_from_toml, config_to_toml
from gat_tui.runs.identity import config_differences

# a config.toml as written before pgd_at/trades, select_best_by and the validation PGD existed
OLD_CONFIG = """
name = "old"
method = "fg_l2"
[train]
epochs = 3
[perturbation]
eps = 1.5
[eval]
fgm_l2_eps = 1.5
"""


def test_an_old_config_loads_with_the_papers_selection_and_no_validation_pgd() -> None:
    old = config_from_toml(OLD_CONFIG, "old config.toml")
    assert old.train.select_best_by == "val_acc_clean" and old.eval.pgd is False
    assert (old.perturbation.norm, old.perturbation.steps, old.perturbation.step_size) == ("linf", 10, 0.0)
    assert old.trades.beta == 6.0
    # a resumed run compares the folder's old config.toml with its checkpoint's (now written with the new keys)
    rewritten = config_from_toml(config_to_toml(old), "checkpoint config")
    assert config_differences(old, rewritten) == []
    assert config_differences(old, RunConfig(name="old", method="fg_l2")) != []  # the comparison does see real changes


def test_the_new_keys_round_trip_through_config_toml() -> None:
    text = OLD_CONFIG + '\n[trades]\nbeta = 3.0\n'
    config = config_from_toml(
        text, "x", ["train.select_best_by=val_acc_pgd", "eval.pgd_eps=0.3", "perturbation.norm=l2", "perturbation.random_start=false"]
    )
    again = config_from_toml(config_to_toml(config), "again")
    assert again == config and again.trades.beta == 3.0 and again.perturbation.random_start is False


def test_the_gat_attacker_refuses_another_selection_rule() -> None:
    import pytest

    from gat_tui.config import ConfigError

    text = 'method = "gat_attack"\n[attack]\nclassifier = "x.safetensors"\n[train]\nselect_best_by = "val_acc_pgd"\n'
    with pytest.raises(ConfigError, match="'train.select_best_by' = 'val_acc_pgd' does not apply to gat_attack"):
        config_from_toml(text, "p.toml")


def test_a_key_only_one_of_the_configs_has_is_a_difference() -> None:
    # an optional table set in one config only (model.normalize): its keys exist on one side alone
    from dataclasses import replace

    from gat_tui.config import ModelConfig, NormalizeConfig

    plain = RunConfig(name="x")
    normalised = replace(plain, model=replace(ModelConfig(), normalize=NormalizeConfig(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))))
    differences = config_differences(plain, normalised)
    assert differences and all(line.startswith("model.normalize") for line in differences)
    assert config_differences(normalised, plain) and config_differences(plain, plain) == []
