from __future__ import annotations

from pathlib import Path

import pytest

from gat_tui.config import ConfigError, config_to_toml, load_preset, parse_override

PAPER_METHODS = ("baseline", "dropout", "random", "fg_linf", "fg_l2", "gat", "dropout_gat")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "preset.toml"
    path.write_text(text)
    return path


def test_every_paper_preset_is_shipped_and_loads(presets_dir: Path) -> None:
    names = {path.stem for path in presets_dir.glob("*.toml")}
    expected = {f"{dataset}_{method}" for dataset in ("cifar10", "cifar100") for method in PAPER_METHODS}
    expected |= {"cifar10_gat_attack", "cifar100_gat_attack", "synthetic_smoke"}
    assert expected <= names
    for path in presets_dir.glob("*.toml"):
        config = load_preset(path)
        assert config.name == path.stem
        assert config.description and config.paper_source
        assert "source" in path.read_text().lower()  # each preset states its paper source in a comment
        if path.stem.startswith("cifar"):
            assert config.data.dataset == path.stem.split("_")[0]
            assert config.method == path.stem.split("_", 1)[1].removesuffix("_tuned").removeprefix("resnet18_")  # *_gat_tuned: GAT, tuned settings; *_resnet18_*: another classifier
            assert config.data.val_size == 5000
            assert config.train.lr_f == 1e-3


def test_paper_gat_presets_use_the_paper_learning_rates(presets_dir: Path) -> None:
    for name in ("cifar10_gat", "cifar100_gat", "cifar10_dropout_gat", "cifar100_dropout_gat"):
        config = load_preset(presets_dir / f"{name}.toml")
        assert (config.train.lr_f, config.gat.lr_g) == (1e-3, 1e-6)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('method = "gat"\nfoo = 1\n', ["unknown key 'foo'", "allowed keys"]),
        ('[gat]\nc_g = "big"\n', ["'gat.c_g'", "'big'", "expected a number"]),
        ("[gat]\nc_g = -0.5\n", ["'gat.c_g'", "-0.5", ">= 0.0"]),
        ("[gat]\nk = 1.5\n", ["'gat.k'", "1.5", "expected an integer"]),
        ("[train]\nepochs = true\n", ["'train.epochs'", "True", "expected an integer"]),
        ('method = "magic"\n', ["'method'", "'magic'", "gat", "fg_linf"]),
        ('[data]\ndataset = "imagenet"\n', ["'data.dataset'", "'imagenet'", "cifar10"]),
        ("[train]\nalpha = 1.5\n", ["'train.alpha'", "1.5", "<= 1.0"]),
        ("[train]\nlr_f = 0\n", ["'train.lr_f'", "> 0.0"]),
        ("[bogus]\nx = 1\n", ["unknown key 'bogus'"]),
        ('gat = 3\n', ["'gat' must be a table"]),
        ('method = "dropout"\n', ["'model.dropout'", "needs a rate > 0"]),
        ('method = "gat_attack"\n', ["'attack.classifier'", "is empty"]),
        ('[data]\ndataset = "imagefolder"\n', ["'data.path'", "imagefolder"]),
        ("[gat\n", ["not valid TOML"]),
    ],
)
def test_invalid_presets_are_refused_with_file_key_value_and_allowed(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_preset(path)
    message = str(raised.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_missing_preset_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such preset file"):
        load_preset(tmp_path / "nope.toml")


def test_overrides_are_validated_like_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'method = "gat"\n[gat]\nc_g = 0.5\n')
    config = load_preset(path, ["gat.c_g=0.01", "train.epochs=3", "device=cpu", "perturbation.clip=false"])
    assert (config.gat.c_g, config.train.epochs, config.device, config.perturbation.clip) == (0.01, 3, "cpu", False)
    with pytest.raises(ConfigError, match=r"'gat\.k' = 0 is out of range"):
        load_preset(path, ["gat.k=0"])
    with pytest.raises(ConfigError, match="unknown key 'gat.nope'"):
        load_preset(path, ["gat.nope=1"])
    with pytest.raises(ConfigError, match="unknown section 'nope'"):
        load_preset(path, ["nope.x=1"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override("gat.c_g")


def test_resolved_config_round_trips(tmp_path: Path, presets_dir: Path) -> None:
    config = load_preset(presets_dir / "cifar10_gat_attack.toml", ["gat.c_g=0.25"])
    written = write(tmp_path, config_to_toml(config))
    assert load_preset(written) == config
