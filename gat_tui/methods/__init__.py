"""Training methods of the paper's Table 2 and Section 4.2, and two baselines of the field
(PGD adversarial training, TRADES); `build_method` picks one by name.

A new method is one new module with a `TrainingMethod` subclass and one entry below.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from gat_tui.architectures import Architecture, ArchitectureError, build_classifier, build_generator
from gat_tui.config import RunConfig
from gat_tui.methods.base import DrawBatch, StepResult, TrainingMethod
from gat_tui.methods.fast_gradient import FastGradientTraining
from gat_tui.methods.gat import GenerativeAdversarialTraining
from gat_tui.methods.gat_attack import GatAttackerTraining
from gat_tui.methods.pgd_at import PGDAdversarialTraining
from gat_tui.methods.random_noise import RandomPerturbationTraining
from gat_tui.methods.standard import StandardTraining
from gat_tui.methods.trades import TradesTraining

__all__ = ["DrawBatch", "StepResult", "TrainingMethod", "build_method", "MethodSetupError"]


class MethodSetupError(ValueError):
    """The method cannot start with this data, e.g. an attacked classifier of another class count."""


def build_method(config: RunConfig, num_classes: int, image_shape: tuple[int, int, int], device: torch.device) -> TrainingMethod:
    """Create the networks (fresh weights from the current torch seed) and the method on `device`.

    The networks are those of `config.model` (see `gat_tui.architectures`); a spec that cannot be
    built is a MethodSetupError naming it and the cause.
    """
    try:
        method = _build_method(config, num_classes, image_shape, device)
    except ArchitectureError as error:
        raise MethodSetupError(str(error)) from None
    return method


def _build_method(config: RunConfig, num_classes: int, image_shape: tuple[int, int, int], device: torch.device) -> TrainingMethod:
    channels = image_shape[0]
    architecture = Architecture.from_config(config.model)
    train, perturbation, gat = config.train, config.perturbation, config.gat
    if config.method == "gat_attack":
        from gat_tui.checkpoints import Checkpoint

        attacked = Checkpoint.open(Path(config.attack.classifier).expanduser())
        classifier, shape = attacked.classifier(device), attacked.shape
        if (shape.num_classes, shape.channels) != (num_classes, channels):
            raise MethodSetupError(
                f"attack.classifier {config.attack.classifier}: trained for {shape.num_classes} classes of "
                f"{shape.channels}-channel images, but data '{config.data.dataset}' has {num_classes} of {channels}"
            )
        generator = build_generator(architecture, image_shape).to(device)
        attacker = GatAttackerTraining(classifier, generator, gat.lr_g, gat.c_g, perturbation.clip, config.attack.patience)
        # the frozen classifier is the checkpoint's; the generator is this run's
        attacker.architecture = replace(
            attacked.architecture, generator=architecture.generator,
            generator_width=architecture.generator_width, generator_depth=architecture.generator_depth,
        )
        attacker.dropout = shape.dropout
        return attacker

    classifier = build_classifier(architecture, num_classes, image_shape, config.model.dropout).to(device)
    method: TrainingMethod
    if config.method in ("baseline", "dropout"):
        method = StandardTraining(classifier, train.lr_f)
    elif config.method == "random":
        method = RandomPerturbationTraining(classifier, train.lr_f, train.alpha, perturbation.eps, perturbation.clip)
    elif config.method in ("fg_linf", "fg_l2"):
        norm = "linf" if config.method == "fg_linf" else "l2"
        method = FastGradientTraining(classifier, train.lr_f, train.alpha, perturbation.eps, perturbation.clip, norm)
    elif config.method in ("gat", "dropout_gat"):
        generator = build_generator(architecture, image_shape).to(device)
        method = GenerativeAdversarialTraining(
            classifier, generator, train.lr_f, gat.lr_g, train.alpha, gat.c_g, gat.k, perturbation.clip
        )
    elif config.method == "pgd_at":
        method = PGDAdversarialTraining(
            classifier, train.lr_f, train.alpha, perturbation.eps, perturbation.clip, perturbation.norm,
            perturbation.steps, perturbation.step_size or None, perturbation.random_start,
        )
    elif config.method == "trades":
        method = TradesTraining(
            classifier, train.lr_f, config.trades.beta, perturbation.eps, perturbation.clip, perturbation.norm,
            perturbation.steps, perturbation.step_size or None,
        )
    else:
        raise MethodSetupError(f"unknown method {config.method!r}")
    method.architecture = architecture
    method.dropout = config.model.dropout
    return method
