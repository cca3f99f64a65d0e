"""The presets' JSON Schema (`gat-tui schema`, shipped as gat_tui/preset_files/preset.schema.json):
generated from the config schema, named by every shipped preset's first line, and refusing what
the validator refuses."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gat_tui.config import PRESET_SCHEMA_FILE, ConfigError, config_from_mapping, preset_json_schema

jsonschema = pytest.importorskip("jsonschema", reason='jsonschema is not installed: pip install -e ".[test]"')


def shipped_presets(presets_dir: Path) -> list[Path]:
    return sorted(presets_dir.glob("*.toml"))


def test_the_shipped_schema_file_is_the_generated_one(presets_dir: Path) -> None:
    # regenerate with: gat-tui schema > gat_tui/preset_files/preset.schema.json
    committed = json.loads((presets_dir / PRESET_SCHEMA_FILE).read_text(encoding="utf-8"))
    assert committed == preset_json_schema()


def test_every_shipped_preset_names_the_schema_on_its_first_line_and_validates(presets_dir: Path) -> None:
    schema = preset_json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    presets = shipped_presets(presets_dir)
    assert len(presets) >= 20
    for preset in presets:
        text = preset.read_text(encoding="utf-8")
        assert text.splitlines()[0] == f"#:schema ./{PRESET_SCHEMA_FILE}", preset
        jsonschema.validate(tomllib.loads(text), schema)


def test_the_schema_describes_each_key_with_its_help_default_and_limits() -> None:
    gat = preset_json_schema()["properties"]["gat"]["properties"]
    assert gat["lr_g"] == {
        "description": "Adam learning rate of the generator G", "type": "number", "exclusiveMinimum": 0.0, "maximum": 10.0, "default": 1e-6,
    }
    assert preset_json_schema()["properties"]["data"]["properties"]["dataset"]["enum"] == [
        "cifar10", "cifar100", "mnist", "fashion_mnist", "svhn", "synthetic", "imagefolder",
    ]


BASE: dict[str, Any] = {"name": "ok", "method": "gat", "data": {"dataset": "synthetic", "batch_size": 16, "val_size": 100}, "gat": {"c_g": 0.01}}


def changed(path: str, value: Any) -> dict[str, Any]:
    table = copy.deepcopy(BASE)
    *sections, leaf = path.split(".")
    node = table
    for section in sections:
        node = node.setdefault(section, {})
    node[leaf] = value
    return table


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("gat.c_gg", 0.01),  # an unknown key
        ("gat.k", 1.5),  # a float where an integer is meant
        ("gat.lr_g", 0.0),  # at an exclusive minimum
        ("train.alpha", 1.5),  # above a maximum
        ("data.dataset", "imagenet"),  # not a choice
        ("name", "../escape"),  # not a folder name
        ("model.normalize", {"mean": [0.5]}),  # a required key missing
        ("model.normalize", {"mean": [], "std": []}),  # fewer items than required
        ("checkpoint.keep_epochs", 1),  # a number where true/false is meant
    ],
)
def test_the_schema_refuses_what_the_validator_refuses(path: str, value: Any) -> None:
    table = changed(path, value)
    with pytest.raises(ConfigError):
        config_from_mapping(table, "test")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(table, preset_json_schema())


def test_the_schema_accepts_what_the_validator_accepts() -> None:
    table = changed("model.normalize", {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]})
    config_from_mapping(table, "test")
    jsonschema.validate(table, preset_json_schema())
