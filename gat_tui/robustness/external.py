"""Evaluating a network gat-tui did not train: `gat-tui eval --model SPEC --weights FILE.safetensors`.

The network is built from the same specs as `model.classifier` (`gat_tui.architectures`), for
the classes and image shape of the data it is evaluated on, optionally behind a normalisation
layer (`--normalize MEAN/STD`), and its weights are read from a safetensors state dict only
(`gat_tui.checkpoints.read_state_dict`; a pickle is refused). The attacks, tables and JSON are
those of a gat-tui run's checkpoint (`gat_tui.robustness.evaluate`).

Weights are accepted as the network's own state dict, as the `classifier.*` tensors of a gat-tui
checkpoint, and, with `--normalize`, as the state dict of the bare network (without the
normaliser's `network.` prefix), so that a published state dict and a `gat-tui export
--robustbench` file both load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gat_tui.architectures import Architecture, ArchitectureError, Normalized, build_classifier
from gat_tui.checkpoints import Checkpoint, CheckpointError, load_checked_state, read_state_dict
from gat_tui.config import DATASETS, RunConfig, config_from_mapping, config_to_toml, load_preset
from gat_tui.robustness.evaluate import CheckpointEvaluation, LoadedEvaluation, attack_all, default_attacks, load_eval_data
from gat_tui.robustness.options import EvalOptions
from gat_tui.robustness.plan import AttackPlan, EvalError, plan_attacks
from gat_tui.robustness.resume import ResumeSpec, file_identity
from gat_tui.runs.folder import RunPaths
from gat_tui.toml_schema import parse_override, parse_toml, set_dotted

WHERE = "gat-tui eval --model options"


@dataclass(frozen=True)
class ExternalModel:
    """A classifier spec, its weights file, and the data it is evaluated on (a dataset name or a preset/run's [data])."""

    spec: str
    weights: Path
    dataset: str = "cifar10"
    data: tuple[str, ...] = ()  # KEY=VALUE overrides of [data] (num_classes=3, image_size=8, path=..., ...)
    normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None


def parse_normalize(text: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """`MEAN/STD`, each comma-separated per channel: `0.4914,0.4822,0.4465/0.2470,0.2435,0.2616`."""
    mean, slash, std = text.partition("/")
    example = "--normalize 0.4914,0.4822,0.4465/0.2470,0.2435,0.2616"
    if not slash:
        raise EvalError(f"--normalize {text!r}: expected MEAN/STD, e.g. {example}")
    try:
        return tuple(float(v) for v in mean.split(",")), tuple(float(v) for v in std.split(","))
    except ValueError:
        raise EvalError(f"--normalize {text!r}: not comma-separated numbers; expected e.g. {example}") from None


def model_config(model: ExternalModel) -> RunConfig:
    """The run config whose [data] and [model] describe `model`'s evaluation, validated (errors name the key)."""
    if model.dataset in DATASETS:
        table: dict[str, Any] = {"data": {"dataset": model.dataset}}
        if model.dataset == "synthetic":  # its default validation split (5000) exceeds its default 2000 training images
            table["data"]["val_size"] = 200
    else:  # a preset file, or a run folder's config: its [data], so the images are the ones it was trained on
        path = Path(model.dataset)
        if path.is_dir():
            path = RunPaths(path).config
        if not path.is_file():
            raise EvalError(f"--dataset {model.dataset!r}: expected one of {', '.join(DATASETS)}, a preset file or a run folder")
        table = {"data": parse_toml(config_to_toml(load_preset(path)), str(path))["data"]}
    model_table: dict[str, Any] = {"classifier": model.spec}
    if model.normalize is not None:
        model_table["normalize"] = {"mean": list(model.normalize[0]), "std": list(model.normalize[1])}
    table["model"] = model_table
    for override in model.data:
        key, value = parse_override(override, "--data")
        set_dotted(RunConfig, table, f"data.{key}", value, override, option="--data", prefix="data.")
    return config_from_mapping(table, WHERE)


def build_external(model: ExternalModel, num_classes: int, image_shape: tuple[int, int, int], config: RunConfig) -> nn.Module:
    """The classifier of `model.spec` for this data, its weights loaded from `model.weights`, in eval mode."""
    try:
        network = build_classifier(Architecture.from_config(config.model), num_classes, image_shape)
    except ArchitectureError as error:
        raise EvalError(f"--model: {error} (for {num_classes} classes, images {image_shape})") from None
    load_state_file(model.weights, network, model.spec)
    return network.eval()


def load_state_file(path: Path, network: nn.Module, spec: str) -> None:
    """Load a safetensors state dict into `network`, as it is or in the forms the module docstring lists."""
    tensors = read_state_dict(path)
    candidates: list[tuple[str, nn.Module, Mapping[str, torch.Tensor]]] = [("", network, tensors)]
    from_checkpoint = {key.removeprefix("classifier."): value for key, value in tensors.items() if key.startswith("classifier.")}
    if from_checkpoint:
        candidates.append(("classifier.", network, from_checkpoint))
    if isinstance(network, Normalized):
        candidates += [(prefix, network.network, state) for prefix, _, state in list(candidates)]
    wanted = [set(module.state_dict()) for _, module, _ in candidates]
    # the form whose names fit best; its errors (missing, extra, shapes) are the ones shown
    best = max(range(len(candidates)), key=lambda i: (len(wanted[i] & set(candidates[i][2])), -len(set(candidates[i][2]) ^ wanted[i])))
    prefix, module, state = candidates[best]
    try:
        load_checked_state(path, prefix, module, state)
    except CheckpointError as error:
        raise CheckpointError(f"--weights {error} (--model {spec!r})") from None


def evaluate_model(model: ExternalModel, options: EvalOptions) -> CheckpointEvaluation:
    """`evaluate_checkpoint` for `model`; `clip` defaults to on (pixels stay in [0, 1]). AutoAttack's
    state file goes beside the weights file."""
    from gat_tui.device import select_device

    device = select_device(options.device_name)
    config = model_config(model)
    source = options.source
    source_checkpoint = Checkpoint.open(source) if source is not None else None
    generator_model = Checkpoint.open(options.generator).generator(device) if options.generator is not None else None
    names = default_attacks(options.attacks, generator_model)
    use_clip = True if options.clip is None else options.clip

    def plan(num_classes: int | None) -> list[AttackPlan]:
        return plan_attacks(
            names, options.eps_values, use_clip, generator_model, options.pgd_steps, options.pgd_step_size,
            options.autoattack, num_classes,
        )

    plan(None)  # fail before loading
    data = load_eval_data(config, options, device)
    plans = plan(data.num_classes)
    target = build_external(model, data.num_classes, data.image_shape, config).to(device)
    source_model = target
    if source_checkpoint is not None:
        if source_checkpoint.shape.num_classes != data.num_classes:
            raise EvalError(
                f"--source {source}: a model of {source_checkpoint.shape.num_classes} classes cannot attack one of {data.num_classes}"
            )
        source_model = source_checkpoint.classifier(device)
    resume = None
    if options.resumable:
        identity: dict[str, object] = {
            "model": model.spec, "weights": file_identity(model.weights), "dataset": model.dataset, "data": list(model.data),
            "normalize": model.normalize,
        } | options.resume_identity()
        resume = ResumeSpec(model.weights.parent, identity, options.on_notice)
    loaded = LoadedEvaluation(
        target, source_model, data, tuple(plans), options.batch_size or config.data.eval_batch_size, device, use_clip, False, resume
    )
    return attack_all(loaded, options)
