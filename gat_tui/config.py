"""The run configuration: one typed structure, loaded from a preset TOML and validated.

Every field carries its meaning, unit and allowed values in `setting(...)`, so the validator
(`gat_tui.toml_schema`), the error messages and the resolved `config.toml` all come from one
place; this module holds the schema and the checks that span several keys.
This module imports neither torch nor any UI library: `gat-tui presets` stays fast.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gat_tui.json_schema import json_schema
from gat_tui.toml_schema import REQUIRED, SchemaError, build, parse_override, parse_toml, read_text, set_dotted, setting, to_toml

__all__ = [
    "ConfigError", "RunConfig", "DataConfig", "ModelConfig", "NormalizeConfig", "TrainConfig", "PerturbationConfig", "GatConfig",
    "AttackConfig", "CheckpointConfig", "EvalConfig", "LoggingConfig", "TradesConfig", "METHODS", "DATASETS", "SELECTION_METRICS", "DEVICES",
    "FOLDER_NAME", "SEED_MAX", "config_from_mapping", "config_from_toml", "config_to_toml", "load_preset", "parse_override",
    "preset_json_schema", "with_absolute_data_path", "PRESET_SCHEMA_FILE",
]

METHODS = ("baseline", "dropout", "random", "fg_linf", "fg_l2", "gat", "dropout_gat", "gat_attack", "pgd_at", "trades")
DATASETS = ("cifar10", "cifar100", "mnist", "fashion_mnist", "svhn", "synthetic", "imagefolder")
# the validation figure that picks a run's best checkpoint (train.select_best_by) and a sweep's tuned setting (tune_metric)
SELECTION_METRICS = ("val_acc_clean", "val_acc_fgm_l2", "val_acc_pgd")
DEVICES = ("auto", "cpu", "cuda", "mps")


# One error type for every fault in a preset, an override or a sweep file: the CLI and the
# dashboard catch ConfigError, and toml_schema raises it without knowing this module.
ConfigError = SchemaError

# The largest seed torch's and numpy's generators take without overflowing (a signed 64-bit integer).
SEED_MAX = 2**63 - 1
# A name that becomes a folder name (a run's, a sweep's): no path separator, no '..', no hidden file.
FOLDER_NAME = (r"[A-Za-z0-9_-][A-Za-z0-9._-]*", "letters, digits, '-', '_' and '.', not starting with '.'")
# Upper bounds where a larger value would exhaust memory before training starts.
IMAGES_MAX = 10_000_000
BATCH_MAX = 65_536
# A learning rate above this diverges at once with Adam; it is a typo, not an experiment.
LR_MAX = 10.0


@dataclass(frozen=True)
class DataConfig:
    dataset: str = setting("cifar10", "which images to train on", choices=DATASETS)
    path: str = setting("", "imagefolder only: folder holding train/ and test/ of class sub-folders")
    val_size: int = setting(5000, "images held out of the training set for validation", min=1, max=IMAGES_MAX)
    split_seed: int = setting(0, "seed of the train/validation split (fixed across runs)", min=0, max=SEED_MAX)
    batch_size: int = setting(128, "minibatch size m of Algorithm 1, in images", min=1, max=BATCH_MAX)
    eval_batch_size: int = setting(500, "images per batch during evaluation", min=1, max=BATCH_MAX)
    image_size: int = setting(32, "synthetic and imagefolder: side of the square images, pixels", min=4, max=1024)
    num_classes: int = setting(10, "synthetic only: number of classes", min=2, max=100_000)
    train_size: int = setting(2000, "synthetic only: training images before the validation split", min=2, max=IMAGES_MAX)
    test_size: int = setting(500, "synthetic only: test images", min=1, max=IMAGES_MAX)


# `model.classifier` / `model.generator`: a built-in name, a library's network, or a user's factory
CLASSIFIER_SPEC = (
    r"allconv|(torchvision|timm):[A-Za-z0-9_.-]+|[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*",
    "'allconv', 'torchvision:NAME', 'timm:NAME' or 'package.module:factory'",
)
GENERATOR_SPEC = (r"table1|[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*", "'table1' or 'package.module:factory'")


@dataclass(frozen=True)
class NormalizeConfig:
    mean: tuple[float, ...] = setting(REQUIRED, "per-channel mean subtracted from the pixels inside the classifier", min_items=1)
    std: tuple[float, ...] = setting(
        REQUIRED, "per-channel standard deviation the pixels are divided by inside the classifier",
        min=0.0, min_exclusive=True, min_items=1,
    )


@dataclass(frozen=True)
class ModelConfig:
    classifier: str = setting(
        "allconv",
        "classifier F: 'allconv' (Table 1), 'torchvision:NAME' (weights=None), 'timm:NAME' (extra [timm]) "
        "or 'package.module:factory' (imports and runs that module)",
        pattern=CLASSIFIER_SPEC,
    )
    normalize: NormalizeConfig | None = setting(
        None, "optional { mean = [...], std = [...] }: a normalisation layer inside the classifier (attacks stay in pixels)"
    )
    dropout: float = setting(
        0.0, "dropout rate after each stride-2 convolution of the classifier (0 = none); allconv or a factory taking dropout=",
        min=0.0, max=0.95,
    )
    generator: str = setting(
        "table1", "generator G: 'table1' (Table 1) or 'package.module:factory' (imports and runs that module)",
        pattern=GENERATOR_SPEC,
    )
    generator_width: int = setting(48, "table1 generator: channels of its hidden convolutions (Table 1: 48)", min=1, max=4096)
    generator_depth: int = setting(6, "table1 generator: number of its 3x3 convolutions (Table 1: 6)", min=0, max=64)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = setting(100, "passes of the classifier over the training set", min=1, max=100_000)
    lr_f: float = setting(1e-3, "Adam learning rate of the classifier F", min=0.0, min_exclusive=True, max=LR_MAX)
    alpha: float = setting(
        0.5, "weight of the clean loss J(x,y) against the perturbed loss (Eq. 2, 4, 10)", min=0.0, max=1.0
    )
    log_every: int = setting(50, "steps between step-metric events (and host syncs)", min=1)
    max_steps_per_epoch: int = setting(0, "cap on classifier steps per epoch (0 = a full pass)", min=0)
    select_best_by: str = setting(
        "val_acc_clean",
        "validation accuracy that picks the best checkpoint: clean (the paper's rule), under FGM-L2 at eval.fgm_l2_eps, "
        "or under the validation PGD of [eval] (Rice et al. 2020: robust overfitting)",
        choices=SELECTION_METRICS,
    )


@dataclass(frozen=True)
class PerturbationConfig:
    eps: float = setting(
        1.0,
        "perturbation size for random / fg_linf / fg_l2 / pgd_at / trades: an L2 norm, or the L-inf bound "
        "(fg_linf; pgd_at and trades with norm = 'linf')",
        min=0.0,
    )
    clip: bool = setting(True, "clip adversarial images to the valid pixel range [0, 1]")
    norm: str = setting("linf", "pgd_at and trades only: the ball eps bounds, 'linf' or 'l2'", choices=("linf", "l2"))
    steps: int = setting(10, "pgd_at and trades only: PGD iterations per training step", min=1, max=1000)
    step_size: float = setting(
        0.0, "pgd_at and trades only: PGD step, in eps's unit (0 = 2.5*eps/steps, Madry et al.; 2/255 at eps 8/255, 10 steps)", min=0.0
    )
    random_start: bool = setting(
        True, "pgd_at only: start PGD at a uniform random point of the eps-ball (trades always starts at x + 0.001*N(0, 1))"
    )


@dataclass(frozen=True)
class GatConfig:
    c_g: float = setting(0.01, "weight of the squared L2 norm of G(delta) in the generator loss (Eq. 9)", min=0.0)
    k: int = setting(1, "generator steps per classifier step (Algorithm 1)", min=1)
    lr_g: float = setting(1e-6, "Adam learning rate of the generator G", min=0.0, min_exclusive=True, max=LR_MAX)


@dataclass(frozen=True)
class TradesConfig:
    beta: float = setting(6.0, "trades only: weight beta of KL(f(x) || f(x')) against CE(f(x), y) (Zhang et al. 2019: 6)", min=0.0)


@dataclass(frozen=True)
class AttackConfig:
    classifier: str = setting(
        "", "gat_attack only: safetensors checkpoint of the frozen classifier to attack"
    )
    patience: int = setting(5, "gat_attack only: epochs without a better validation loss before stopping", min=1)


@dataclass(frozen=True)
class CheckpointConfig:
    every_steps: int = setting(0, "also save last.safetensors every this many steps (0 = at epoch ends only)", min=0)
    keep_epochs: bool = setting(False, "also keep a copy of every epoch's checkpoint as epoch-NNN.safetensors")


@dataclass(frozen=True)
class EvalConfig:
    fgm_l2_eps: float = setting(1.0, "L2 norm of the FGM-L2 attack in per-epoch validation", min=0.0)
    panel_size: int = setting(8, "validation images in the fixed preview panel", min=0, max=64)
    pgd: bool = setting(
        False, "also measure validation accuracy under PGD every epoch (always on with train.select_best_by = 'val_acc_pgd')"
    )
    pgd_norm: str = setting("linf", "validation PGD: the ball pgd_eps bounds, 'linf' or 'l2'", choices=("linf", "l2"))
    pgd_eps: float = setting(8 / 255, "validation PGD: size of the ball, an L-inf bound or an L2 norm (default 8/255)", min=0.0)
    pgd_steps: int = setting(10, "validation PGD: iterations (step 2.5*pgd_eps/pgd_steps, random start)", min=1, max=1000)
    pgd_images: int = setting(
        1000, "validation PGD: the first this many validation images are attacked (0 = all); a small budget per epoch",
        min=0, max=IMAGES_MAX,
    )


@dataclass(frozen=True)
class LoggingConfig:
    tensorboard: bool = setting(
        True,
        "also write TensorBoard event files to RUN_DIR/tensorboard/: the metrics, each epoch's preview panel, "
        "and the config as hyperparameters of the test figures",
    )


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs; sections mirror the preset's TOML tables."""

    name: str = setting("run", "short name of the preset; used for the run folder", pattern=FOLDER_NAME)
    description: str = setting("", "one line shown by `gat-tui presets`")
    paper_source: str = setting("", "where in the paper this experiment comes from")
    method: str = setting("gat", "training method", choices=METHODS)
    seed: int = setting(0, "seed of weight initialisation, data order and perturbations", min=0, max=SEED_MAX)
    device: str = setting("auto", "where to train: auto picks cuda, then mps, then cpu", choices=DEVICES)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    perturbation: PerturbationConfig = field(default_factory=PerturbationConfig)
    gat: GatConfig = field(default_factory=GatConfig)
    trades: TradesConfig = field(default_factory=TradesConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


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
    if config.method == "gat_attack" and config.train.select_best_by != "val_acc_clean":
        raise ConfigError(
            f"{where}: key 'train.select_best_by' = {config.train.select_best_by!r} does not apply to gat_attack, "
            "which keeps the generator with the lowest validation L_G; leave it at 'val_acc_clean'"
        )
    if config.method in ("dropout", "dropout_gat") and config.model.dropout == 0.0:
        raise ConfigError(f"{where}: key 'model.dropout' = 0.0 but method '{config.method}' needs a rate > 0")
    model = config.model
    if model.dropout > 0 and model.classifier.split(":", 1)[0] in ("torchvision", "timm"):
        raise ConfigError(
            f"{where}: key 'model.dropout' = {model.dropout} applies to 'allconv' (or a factory that takes dropout=), "
            f"not to model.classifier = {model.classifier!r}"
        )
    if model.normalize is not None and len(model.normalize.mean) != len(model.normalize.std):
        raise ConfigError(
            f"{where}: key 'model.normalize' has {len(model.normalize.mean)} means and {len(model.normalize.std)} stds; "
            "expected one of each per channel"
        )
    if model.generator != "table1" and (model.generator_width, model.generator_depth) != (48, 6):
        raise ConfigError(f"{where}: keys 'model.generator_width' and 'model.generator_depth' apply to the 'table1' generator only")


def config_from_mapping(table: Mapping[str, Any], where: str) -> RunConfig:
    """Validate a parsed TOML table; `where` names its origin (a file path) in every error."""
    config = build(RunConfig, table, where)
    _check_consistency(config, where)
    return config


def load_preset(path: Path, overrides: Iterable[str] = ()) -> RunConfig:
    """Read and validate a preset file, then apply `KEY=VALUE` overrides (dotted keys)."""
    return config_from_toml(read_text(path, "preset"), str(path), overrides)


def config_from_toml(text: str, where: str, overrides: Iterable[str] = ()) -> RunConfig:
    """Validate TOML text (a preset, or the config saved in a checkpoint), then `KEY=VALUE` overrides."""
    table = parse_toml(text, where)
    config_from_mapping(table, where)  # report the text's own errors before any override's
    overrides = list(overrides)
    for override in overrides:
        key, value = parse_override(override)
        set_dotted(RunConfig, table, key, value, override)
    return config_from_mapping(table, where if not overrides else f"{where} with --set")


def with_absolute_data_path(config: RunConfig) -> RunConfig:
    """`config` with `data.path` made absolute (from the working folder), so a run reads the same images from anywhere."""
    if not config.data.path:
        return config
    absolute = str(Path(config.data.path).expanduser().absolute())
    return dataclasses.replace(config, data=dataclasses.replace(config.data, path=absolute))


# the JSON Schema shipped beside the presets (gat_tui/preset_files/), named by their first line
PRESET_SCHEMA_FILE = "preset.schema.json"


def preset_json_schema() -> dict[str, Any]:
    """The JSON Schema of a preset (`gat-tui schema`), from the same fields the validator reads.

    Editors with a TOML language server (taplo, Even Better TOML) complete and check a preset's
    keys against it when its first line is `#:schema PATH-OR-URL`. The checks across keys
    (e.g. `data.val_size` below `data.train_size`) are the validator's alone.
    """
    return json_schema(
        RunConfig, "gat-tui preset",
        "A gat-tui run configuration (a preset): `gat-tui run PRESET`. Generated by `gat-tui schema` from gat_tui/config.py.",
    )


def config_to_toml(config: RunConfig) -> str:
    """The resolved configuration as TOML that `load_preset` reads back to an equal config."""
    return to_toml(config)
