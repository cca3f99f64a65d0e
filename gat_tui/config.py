"""The run configuration: one typed structure, loaded from a preset TOML and validated.

Every field carries its meaning, unit and allowed values in `field(metadata=...)`, so the
validator, the error messages and the resolved `config.toml` all come from one place.
This module imports neither torch nor any UI library: `gat-tui presets` stays fast.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

METHODS = ("baseline", "dropout", "random", "fg_linf", "fg_l2", "gat", "dropout_gat", "gat_attack")
DATASETS = ("cifar10", "cifar100", "synthetic", "imagefolder")
DEVICES = ("auto", "cpu", "cuda", "mps")


class ConfigError(ValueError):
    """A preset or override that does not validate; the message names file, key, value, allowed."""


def _spec(
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    min_exclusive: bool = False,
    choices: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    return {"help": help, "min": min, "max": max, "min_exclusive": min_exclusive, "choices": choices}


def _field(default: Any, help: str, **limits: Any) -> Any:
    return field(default=default, metadata=_spec(help, **limits))


@dataclass(frozen=True)
class DataConfig:
    dataset: str = _field("cifar10", "which images to train on", choices=DATASETS)
    path: str = _field("", "imagefolder only: folder holding train/ and test/ of class sub-folders")
    val_size: int = _field(5000, "images held out of the training set for validation", min=1)
    split_seed: int = _field(0, "seed of the train/validation split (fixed across runs)", min=0)
    batch_size: int = _field(128, "minibatch size m of Algorithm 1, in images", min=1)
    eval_batch_size: int = _field(500, "images per batch during evaluation", min=1)
    image_size: int = _field(32, "synthetic and imagefolder: side of the square images, pixels", min=4)
    num_classes: int = _field(10, "synthetic only: number of classes", min=2)
    train_size: int = _field(2000, "synthetic only: training images before the validation split", min=2)
    test_size: int = _field(500, "synthetic only: test images", min=1)


@dataclass(frozen=True)
class ModelConfig:
    dropout: float = _field(
        0.0, "dropout rate after each stride-2 convolution of the classifier (0 = none)", min=0.0, max=0.95
    )


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = _field(100, "passes of the classifier over the training set", min=1)
    lr_f: float = _field(1e-3, "Adam learning rate of the classifier F", min=0.0, min_exclusive=True)
    alpha: float = _field(
        0.5, "weight of the clean loss J(x,y) against the perturbed loss (Eq. 2, 4, 10)", min=0.0, max=1.0
    )
    log_every: int = _field(50, "steps between step-metric events (and host syncs)", min=1)
    max_steps_per_epoch: int = _field(0, "cap on classifier steps per epoch (0 = a full pass)", min=0)


@dataclass(frozen=True)
class PerturbationConfig:
    eps: float = _field(
        1.0,
        "perturbation size for random / fg_linf / fg_l2: an L2 norm, or the L-inf bound for fg_linf",
        min=0.0,
    )
    clip: bool = _field(True, "clip adversarial images to the valid pixel range [0, 1]")


@dataclass(frozen=True)
class GatConfig:
    c_g: float = _field(0.01, "weight of the squared L2 norm of G(delta) in the generator loss (Eq. 9)", min=0.0)
    k: int = _field(1, "generator steps per classifier step (Algorithm 1)", min=1)
    lr_g: float = _field(1e-6, "Adam learning rate of the generator G", min=0.0, min_exclusive=True)


@dataclass(frozen=True)
class AttackConfig:
    classifier: str = _field(
        "", "gat_attack only: safetensors checkpoint of the frozen classifier to attack"
    )
    patience: int = _field(5, "gat_attack only: epochs without a better validation loss before stopping", min=1)


@dataclass(frozen=True)
class CheckpointConfig:
    every_steps: int = _field(0, "also save last.safetensors every this many steps (0 = at epoch ends only)", min=0)
    keep_epochs: bool = _field(False, "also keep a copy of every epoch's checkpoint as epoch-NNN.safetensors")


@dataclass(frozen=True)
class EvalConfig:
    fgm_l2_eps: float = _field(1.0, "L2 norm of the FGM-L2 attack in per-epoch validation", min=0.0)
    panel_size: int = _field(8, "validation images in the fixed preview panel", min=0, max=64)


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs; sections mirror the preset's TOML tables."""

    name: str = _field("run", "short name of the preset; used for the run folder")
    description: str = _field("", "one line shown by `gat-tui presets`")
    paper_source: str = _field("", "where in the paper this experiment comes from")
    method: str = _field("gat", "training method", choices=METHODS)
    seed: int = _field(0, "seed of weight initialisation, data order and perturbations", min=0)
    device: str = _field("auto", "where to train: auto picks cuda, then mps, then cpu", choices=DEVICES)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    perturbation: PerturbationConfig = field(default_factory=PerturbationConfig)
    gat: GatConfig = field(default_factory=GatConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


SECTION_TYPES: dict[str, type] = {
    f.name: f.default_factory  # type: ignore[misc]
    for f in fields(RunConfig)
    if dataclasses.is_dataclass(f.default_factory)
}


def _type_name(kind: type) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[kind]


def _coerce(value: Any, kind: type, where: str, key: str) -> Any:
    # TOML's bool is a Python int subclass: refuse it where a number is meant, and vice versa.
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(float(value)):
                raise ConfigError(f"{where}: key '{key}' = {value!r} is not finite; expected a finite number")
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    raise ConfigError(
        f"{where}: key '{key}' = {value!r} has type {type(value).__name__}; expected {_type_name(kind)}"
    )


def _check_limits(value: Any, spec: Mapping[str, Any], where: str, key: str) -> None:
    choices = spec.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{where}: key '{key}' = {value!r} is not allowed; expected one of {', '.join(choices)}")
    low, high = spec.get("min"), spec.get("max")
    if low is not None:
        too_low = value <= low if spec.get("min_exclusive") else value < low
        if too_low:
            bound = f"> {low}" if spec.get("min_exclusive") else f">= {low}"
            raise ConfigError(f"{where}: key '{key}' = {value!r} is out of range; expected {bound}")
    if high is not None and value > high:
        raise ConfigError(f"{where}: key '{key}' = {value!r} is out of range; expected <= {high}")


def _build(cls: type, table: Mapping[str, Any], where: str, prefix: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        name = f"{prefix}{unknown[0]}"
        raise ConfigError(f"{where}: unknown key '{name}'; allowed keys here: {', '.join(known)}")
    values: dict[str, Any] = {}
    for key, value in table.items():
        spec_field = known[key]
        dotted = f"{prefix}{key}"
        if dataclasses.is_dataclass(spec_field.default_factory):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: key '{dotted}' must be a table [{dotted}], got {value!r}")
            values[key] = _build(spec_field.default_factory, value, where, f"{dotted}.")
            continue
        kind = type(spec_field.default)
        coerced = _coerce(value, kind, where, dotted)
        _check_limits(coerced, spec_field.metadata, where, dotted)
        values[key] = coerced
    return cls(**values)


def _check_consistency(config: RunConfig, where: str) -> None:
    data = config.data
    if data.dataset == "imagefolder" and not data.path:
        raise ConfigError(f"{where}: key 'data.path' is empty; imagefolder needs the folder with train/ and test/")
    if data.dataset == "synthetic" and data.val_size >= data.train_size:
        raise ConfigError(
            f"{where}: key 'data.val_size' = {data.val_size} must be smaller than data.train_size = {data.train_size}"
        )
    if config.method == "gat_attack" and not config.attack.classifier:
        raise ConfigError(f"{where}: key 'attack.classifier' is empty; gat_attack needs a classifier checkpoint")
    if config.method in ("dropout", "dropout_gat") and config.model.dropout == 0.0:
        raise ConfigError(f"{where}: key 'model.dropout' = 0.0 but method '{config.method}' needs a rate > 0")


def config_from_mapping(table: Mapping[str, Any], where: str) -> RunConfig:
    """Validate a parsed TOML table; `where` names its origin (a file path) in every error."""
    config = _build(RunConfig, table, where, "")
    _check_consistency(config, where)
    return config


def load_preset(path: Path, overrides: Iterable[str] = ()) -> RunConfig:
    """Read and validate a preset file, then apply `KEY=VALUE` overrides (dotted keys)."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such preset file") from None
    except OSError as error:
        raise ConfigError(f"{where}: cannot read preset: {error.strerror}") from None
    return config_from_toml(text, where, overrides)


def config_from_toml(text: str, where: str, overrides: Iterable[str] = ()) -> RunConfig:
    """Validate TOML text (a preset, or the config saved in a checkpoint), then `KEY=VALUE` overrides."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{where}: not valid TOML: {error}") from None
    config_from_mapping(table, where)  # report the text's own errors before any override's
    overrides = list(overrides)
    for override in overrides:
        key, value = parse_override(override)
        _set_dotted(table, key, value, override)
    return config_from_mapping(table, where if not overrides else f"{where} with --set")


def parse_override(text: str) -> tuple[str, Any]:
    """`gat.c_g=0.01` -> ("gat.c_g", 0.01); the value is read as TOML, else as a bare string."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set gat.c_g=0.01")
    key, raw = (part.strip() for part in text.split("=", 1))
    if not key:
        raise ConfigError(f"--set {text!r}: the key before '=' is empty")
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw  # lets `--set device=cuda` work without TOML quotes
    return key, value


def _set_dotted(table: dict[str, Any], key: str, value: Any, original: str) -> None:
    *sections, leaf = key.split(".")
    node = table
    for depth, section in enumerate(sections):
        if section not in SECTION_TYPES or depth > 0:
            allowed = ", ".join(SECTION_TYPES)
            raise ConfigError(f"--set {original!r}: unknown section '{section}'; allowed sections: {allowed}")
        node = node.setdefault(section, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {original!r}: '{section}' is not a table")
    node[leaf] = value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def config_to_toml(config: RunConfig) -> str:
    """The resolved configuration as TOML that `load_preset` reads back to an equal config."""
    lines: list[str] = []
    sections: list[tuple[str, Any]] = []
    for spec_field in fields(config):
        value = getattr(config, spec_field.name)
        if dataclasses.is_dataclass(value):
            sections.append((spec_field.name, value))
        else:
            lines.append(f"{spec_field.name} = {_toml_value(value)}  # {spec_field.metadata['help']}")
    for name, section in sections:
        lines.append("")
        lines.append(f"[{name}]")
        for spec_field in fields(section):
            value = getattr(section, spec_field.name)
            lines.append(f"{spec_field.name} = {_toml_value(value)}  # {spec_field.metadata['help']}")
    return "\n".join(lines) + "\n"


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)
